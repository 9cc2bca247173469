package soaktest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/keyward/apikeys"
)

// The soak is long, so a plain go test ./... skips it: envSoak=1 turns it
// on (.ci/run does), and so does setting envDuration, how long each store
// is soaked: a Go duration, default defaultDuration, capped at maxDuration.
const (
	envSoak         = "APIKEYS_SOAK"
	envDuration     = "APIKEYS_SOAK_DURATION"
	defaultDuration = 5 * time.Second
	maxDuration     = 30 * time.Second
)

// soakOpTimeout is the Manager's OpTimeout: generous, so that a store that
// is merely slow under the soak's load (and -race, on a busy machine) does
// not fail an operation; it must stay above sqliteBusyTimeout.
const soakOpTimeout = 30 * time.Second

// The shape of the load.
const (
	numUsers   = 4
	numWorkers = 8 // worker w acts for user w % numUsers
	pageSize   = 7 // small, so that listings take many pages
	minOwn     = 3 // a worker below this many live keys creates one
	maxOwn     = 30
	// keep at most this many deleted keys per user for later checks
	maxDeadKept = 4096
	// at the end, check this many of each user's deleted keys
	finalDeadChecks = 300
)

// intruder starts the name a worker gives when it tries to update another
// user's key: no key may ever show such a name.
const intruder = "intruder"

// soakRequest matches every origin and assistant setting the soak gives
// keys, so that a live key always authorizes it.
var soakRequest = apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst-1"}

type variant struct {
	name  string
	open  openFunc
	cache bool
}

var variants = []variant{
	{"memstore", openMemstore, false},
	{"memstore+cache", openMemstore, true},
	{"sqlite", openSQLite, false},
	{"sqlite+cache", openSQLite, true},
	{"redis", openRedis, false},
	{"redis+cache", openRedis, true}, // also with Redis pub/sub invalidation
	{"postgres", openPostgres, false},
	{"postgres+cache", openPostgres, true},
	{"mariadb", openMySQL, false},
	{"mariadb+cache", openMySQL, true},
}

// TestSoak soaks each store in turn. The variants run one after the other,
// not in parallel, so that each one's goroutine-leak check sees only the
// goroutines it started: the goleak snapshot is taken before the store is
// opened, and the check runs last, after the Manager, the store, the
// clean-up of its data and its client or pool have all been closed.
func TestSoak(t *testing.T) {
	requireSoak(t)
	if sqliteBusyTimeout >= soakOpTimeout {
		t.Fatalf("sqliteBusyTimeout %v must be below soakOpTimeout %v", sqliteBusyTimeout, soakOpTimeout)
	}
	d := soakDuration(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // registered first: runs last
			store := v.open(t)
			runSoak(t, v, store, d)
		})
	}
}

// requireSoak skips t unless envSoak is true or envDuration is set.
func requireSoak(t *testing.T) {
	t.Helper()
	if v := os.Getenv(envSoak); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			t.Fatalf("%s=%q: want 1 or 0", envSoak, v)
		}
		if on {
			return
		}
	} else if os.Getenv(envDuration) != "" {
		return
	}
	t.Skipf("the soak is opt-in: set %s=1 (or %s=5s) to run it", envSoak, envDuration)
}

func soakDuration(t *testing.T) time.Duration {
	s := os.Getenv(envDuration)
	if s == "" {
		return defaultDuration
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive Go duration such as 5s", envDuration, s)
	}
	if d > maxDuration {
		t.Logf("%s=%s is capped at %s", envDuration, d, maxDuration)
		d = maxDuration
	}
	return d
}

// Manager calls, counted by type.
type op int

const (
	opCreate op = iota
	opAuthorize
	opGet
	opUpdate
	opRotate
	opDelete
	opList // one page
	numOps
)

var opNames = [numOps]string{"create", "authorize", "get", "update", "rotate", "delete", "list(page)"}

// state is where a key is in its life, as the workers know it.
type state uint8

const (
	stLive     state = iota + 1 // Create or Rotate returned it; no Delete begun
	stDeleting                  // Delete or Rotate(grace 0) of it begun, not returned
	stDeleted                   // Delete or Rotate(grace 0) of it returned success
	stUnknown                   // an operation on it failed: no exact check applies
)

// entry is one key the soak created.
type entry struct {
	id    uuid.UUID
	value string
	user  *userReg
	owner int // the worker that may update, rotate and delete it

	// Guarded by user.mu.
	state   state
	name    string // the name its owner last gave it
	liveSeq uint64 // user.seq when it became live
	deadSeq uint64 // user.seq when its deletion returned
	liveIdx int    // its index in user.live while live
}

// userReg tracks one user's keys. seq counts state changes, so that a
// listing can tell the keys settled before it began from the others.
type userReg struct {
	id string

	mu       sync.Mutex
	seq      uint64
	all      map[uuid.UUID]*entry // every key of the user, ever
	live     []*entry             // keys in stLive
	dead     []*entry             // the most recent maxDeadKept deleted keys
	numDead  int
	numLost  int // in stUnknown
	deadNext int // ring position in dead once full
}

func (u *userReg) addLive(e *entry) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.seq++
	e.state, e.liveSeq, e.liveIdx = stLive, u.seq, len(u.live)
	u.live = append(u.live, e)
	u.all[e.id] = e
}

// beginDelete takes a live key out of the live set before its deletion.
func (u *userReg) beginDelete(e *entry) {
	u.mu.Lock()
	defer u.mu.Unlock()
	last := u.live[len(u.live)-1]
	u.live[e.liveIdx], last.liveIdx = last, e.liveIdx
	u.live = u.live[:len(u.live)-1]
	e.state = stDeleting
}

// endDelete records how a deletion ended.
func (u *userReg) endDelete(e *entry, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !ok {
		e.state = stUnknown
		u.numLost++
		return
	}
	u.seq++
	e.state, e.deadSeq = stDeleted, u.seq
	u.numDead++
	if len(u.dead) < maxDeadKept {
		u.dead = append(u.dead, e)
	} else {
		u.dead[u.deadNext] = e
		u.deadNext = (u.deadNext + 1) % maxDeadKept
	}
}

func (u *userReg) stateOf(e *entry) state {
	u.mu.Lock()
	defer u.mu.Unlock()
	return e.state
}

func (u *userReg) nameOf(e *entry) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return e.name
}

func (u *userReg) setName(e *entry, name string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	e.name = name
}

func (u *userReg) pickLive(r *rand.Rand) *entry {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.live) == 0 {
		return nil
	}
	return u.live[r.IntN(len(u.live))]
}

// pickDead returns a deleted key, half the time one of the most recent.
func (u *userReg) pickDead(r *rand.Rand) *entry {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := len(u.dead)
	if n == 0 {
		return nil
	}
	if n < maxDeadKept && r.IntN(2) == 0 {
		return u.dead[n-1-r.IntN(min(n, 32))]
	}
	return u.dead[r.IntN(n)]
}

// soak is one run: one Manager, the users' registries and the tallies.
type soak struct {
	m     *apikeys.Manager
	ctx   context.Context // for Manager calls; not the stop signal
	users []*userReg
	// owners maps the id of every key ever created to its *userReg.
	owners sync.Map

	counts     [numOps]atomic.Int64
	listings   atomic.Int64 // complete paged listings
	races      atomic.Int64 // expected not-found outcomes of concurrent deletes
	unexpected atomic.Int64
	violations atomic.Int64
	// background last-used flushes that timed out and were retried
	flushTimeouts atomic.Int64
	// keys settled live before a listing began and missing from it: an
	// invariant violation, counted apart to name it in the report
	listMisses atomic.Int64

	mu   sync.Mutex
	msgs []string // the first maxMsgs problems
}

const maxMsgs = 40

func (s *soak) note(kind, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) < maxMsgs {
		s.msgs = append(s.msgs, kind+": "+fmt.Sprintf(format, args...))
	}
}

// unexpectedErr counts an error that no race between workers explains.
func (s *soak) unexpectedErr(where string, err error) {
	s.unexpected.Add(1)
	s.note("unexpected error", "%s: %v", where, err)
}

// violate counts a broken invariant.
func (s *soak) violate(format string, args ...any) {
	s.violations.Add(1)
	s.note("INVARIANT VIOLATED", format, args...)
}

// logCounter is the Manager's ErrorLog: anything it logs at Warn or above
// (a failed publish, a failed last-used write) is an unexpected error, but
// for one documented case, counted apart: a background last-used flush
// that ran out of its deadline (which is LastUsedInterval) on a contended
// store. The Manager puts those uses back and retries them; Close, which
// writes what is left, must still succeed.
type logCounter struct{ s *soak }

func (h logCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h logCounter) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	var logged error
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && a.Key == "err" {
			logged = err
		}
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	if strings.Contains(r.Message, "cannot record last use") && errors.Is(logged, context.DeadlineExceeded) {
		h.s.flushTimeouts.Add(1)
		return nil
	}
	h.s.unexpectedErr("Manager ErrorLog", errors.New(b.String()))
	return nil
}
func (h logCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logCounter) WithGroup(string) slog.Handler      { return h }

// Manager calls, counted.

func (s *soak) create(p apikeys.CreateParams) (apikeys.NewKey, error) {
	s.counts[opCreate].Add(1)
	return s.m.Create(s.ctx, p)
}

func (s *soak) authorize(value string) (apikeys.Key, error) {
	s.counts[opAuthorize].Add(1)
	return s.m.Authorize(s.ctx, value, soakRequest)
}

func (s *soak) get(user string, id uuid.UUID) (apikeys.Key, error) {
	s.counts[opGet].Add(1)
	return s.m.Get(s.ctx, user, id)
}

func (s *soak) update(user string, id uuid.UUID, u apikeys.UpdateParams) (apikeys.Key, error) {
	s.counts[opUpdate].Add(1)
	return s.m.Update(s.ctx, user, id, u)
}

func (s *soak) rotate(user string, id uuid.UUID, grace time.Duration) (apikeys.NewKey, error) {
	s.counts[opRotate].Add(1)
	return s.m.Rotate(s.ctx, user, id, grace)
}

func (s *soak) delete(user string, id uuid.UUID) (apikeys.Key, error) {
	s.counts[opDelete].Add(1)
	return s.m.Delete(s.ctx, user, id)
}

func (s *soak) list(user string, opts apikeys.ListParams) (apikeys.Page, error) {
	s.counts[opList].Add(1)
	return s.m.List(s.ctx, user, opts)
}

// checkKey checks what the library returned for e.
func (s *soak) checkKey(where string, k apikeys.Key, e *entry) {
	if k.ID != e.id {
		s.violate("%s: got key %s, want %s", where, k.ID, e.id)
	}
	if k.UserID != e.user.id {
		s.violate("%s: key %s of %s came back with user_id %q", where, e.id, e.user.id, k.UserID)
	}
	if strings.HasPrefix(k.Name, intruder) {
		s.violate("%s: key %s of %s was renamed by another user: %q", where, e.id, e.user.id, k.Name)
	}
}

// authorizeLive authorizes a key that was live when picked. It must
// authorize unless its deletion began meanwhile.
func (s *soak) authorizeLive(where string, e *entry) {
	k, err := s.authorize(e.value)
	switch {
	case err == nil:
		s.checkKey(where, k, e)
	case errors.Is(err, apikeys.ErrInvalidKey):
		if e.user.stateOf(e) == stLive {
			s.violate("%s: live key %s of %s refused as invalid", where, e.id, e.user.id)
		} else {
			s.races.Add(1)
		}
	default:
		s.unexpectedErr(where+": Authorize", err)
	}
}

// authorizeOwned authorizes a key by its owner, who alone changes or
// deletes it: it must authorize and show the owner's latest name, at once,
// cache or not.
func (s *soak) authorizeOwned(where string, e *entry) {
	k, err := s.authorize(e.value)
	switch {
	case err == nil:
		s.checkKey(where, k, e)
		if want := e.user.nameOf(e); k.Name != want {
			s.violate("%s: Authorize of %s shows name %q, want %q (stale)", where, e.id, k.Name, want)
		}
	case errors.Is(err, apikeys.ErrInvalidKey):
		s.violate("%s: live key %s of %s refused as invalid", where, e.id, e.user.id)
	default:
		s.unexpectedErr(where+": Authorize", err)
	}
}

// expectDead checks a key whose Delete (or Rotate with grace 0) returned:
// it must not authorize, and its owner must not find it.
func (s *soak) expectDead(where string, e *entry) {
	k, err := s.authorize(e.value)
	switch {
	case errors.Is(err, apikeys.ErrInvalidKey):
	case err == nil, errors.Is(err, apikeys.ErrOriginNotAllowed), errors.Is(err, apikeys.ErrAssistantNotAllowed),
		errors.Is(err, apikeys.ErrTransientNotAllowed), errors.Is(err, apikeys.ErrPrivateKeyRequired):
		s.violate("%s: deleted key %s of %s still recognised by Authorize (err=%v, key id %s)", where, e.id, e.user.id, err, k.ID)
	default:
		s.unexpectedErr(where+": Authorize", err)
	}
	_, err = s.get(e.user.id, e.id)
	switch {
	case errors.Is(err, apikeys.ErrNotFound):
	case err == nil:
		s.violate("%s: deleted key %s of %s still found by Get", where, e.id, e.user.id)
	default:
		s.unexpectedErr(where+": Get", err)
	}
}

// listAll pages through the user's keys and checks each page: owner,
// strictly descending ids (so no repeats), page size and cursor. It
// returns the ids seen, or nil after an error.
func (s *soak) listAll(where string, u *userReg) map[uuid.UUID]bool {
	seen := make(map[uuid.UUID]bool)
	var last uuid.UUID
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100_000 {
			s.violate("%s: listing of %s does not end", where, u.id)
			return nil
		}
		page, err := s.list(u.id, apikeys.ListParams{Limit: pageSize, Cursor: cursor})
		if err != nil {
			s.unexpectedErr(where+": List", err)
			return nil
		}
		if len(page.Keys) > pageSize {
			s.violate("%s: page of %d keys, limit %d", where, len(page.Keys), pageSize)
		}
		for _, k := range page.Keys {
			if k.UserID != u.id {
				s.violate("%s: listing of %s shows key %s of %q", where, u.id, k.ID, k.UserID)
			}
			if strings.HasPrefix(k.Name, intruder) {
				s.violate("%s: listing of %s shows key %s renamed by another user: %q", where, u.id, k.ID, k.Name)
			}
			if seen[k.ID] {
				s.violate("%s: listing of %s shows key %s twice", where, u.id, k.ID)
			} else if last != (uuid.UUID{}) && bytes.Compare(k.ID[:], last[:]) >= 0 {
				s.violate("%s: listing of %s not newest first: %s after %s", where, u.id, k.ID, last)
			}
			seen[k.ID] = true
			last = k.ID
		}
		if page.HasMore != (page.NextCursor != "") {
			s.violate("%s: page with HasMore=%v and NextCursor %q", where, page.HasMore, page.NextCursor)
		}
		if !page.HasMore {
			break
		}
		if len(page.Keys) != pageSize || page.NextCursor != last.String() {
			s.violate("%s: page of %d keys ending with %s has NextCursor %q", where, len(page.Keys), last, page.NextCursor)
		}
		cursor = page.NextCursor
	}
	s.listings.Add(1)
	return seen
}

// worker is one goroutine of load. Only the owner of a key updates,
// rotates or deletes it; any worker authorizes, gets and lists it.
type worker struct {
	s    *soak
	n    int
	user *userReg
	own  []*entry // this worker's live keys; only it touches the slice
	rnd  *rand.Rand
	seq  int
}

func (w *worker) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		switch {
		case len(w.own) < minOwn:
			w.create()
		case len(w.own) > maxOwn:
			w.delete()
		default:
			switch r := w.rnd.IntN(100); {
			case r < 30:
				w.authorize()
			case r < 42:
				w.create()
			case r < 52:
				w.update()
			case r < 62:
				w.delete()
			case r < 70:
				w.rotate()
			case r < 78:
				w.get()
			case r < 84:
				w.list()
			case r < 92:
				w.foreign()
			default:
				w.dead()
			}
		}
	}
}

func (w *worker) nextName(what string) string {
	w.seq++
	return fmt.Sprintf("%s %s w%d #%d", what, w.user.id, w.n, w.seq)
}

func (w *worker) origins() []string {
	// Every list admits soakRequest's origin: an empty list would refuse it
	// on a private key, whose browser use must be listed.
	switch w.rnd.IntN(3) {
	case 0:
		return []string{"https://app.example.com"}
	case 1:
		return []string{"https://app.example.com", "http://localhost:3000"}
	default:
		return []string{"https://*.example.com"}
	}
}

func (w *worker) assistants() []string {
	switch w.rnd.IntN(3) {
	case 0:
		return nil
	case 1:
		return []string{"asst-1"}
	default:
		return []string{"asst-2", "asst-1"}
	}
}

// expiry is a time far enough ahead that no key expires during the soak.
func (w *worker) expiry() time.Time {
	return time.Now().Add(time.Hour + time.Duration(w.rnd.IntN(3600))*time.Second)
}

func (w *worker) addOwn(id uuid.UUID, value, name string) *entry {
	e := &entry{id: id, value: value, user: w.user, owner: w.n, name: name}
	if prev, dup := w.s.owners.LoadOrStore(id, w.user); dup {
		w.s.violate("id %s issued twice (before for %s)", id, prev.(*userReg).id)
	}
	w.user.addLive(e)
	w.own = append(w.own, e)
	return e
}

// takeOwn removes and returns a random key of this worker.
func (w *worker) takeOwn() *entry {
	i := w.rnd.IntN(len(w.own))
	e := w.own[i]
	w.own[i] = w.own[len(w.own)-1]
	w.own = w.own[:len(w.own)-1]
	return e
}

func (w *worker) create() {
	s := w.s
	p := apikeys.CreateParams{
		Type:               apikeys.Private,
		Name:               w.nextName("key"),
		AllowedOrigins:     w.origins(),
		AllowedAssistants:  w.assistants(),
		TransientAssistant: w.rnd.IntN(2) == 0,
		UserID:             w.user.id,
		UserEmail:          "soak@example.com",
	}
	if w.rnd.IntN(2) == 0 {
		p.Type = apikeys.Public
	}
	if w.rnd.IntN(3) == 0 {
		p.ExpiresAt = w.expiry()
	}
	nk, err := s.create(p)
	if err != nil {
		s.unexpectedErr("Create", err)
		return
	}
	if nk.UserID != w.user.id || nk.Name != p.Name || nk.Type != p.Type || !strings.HasPrefix(nk.Value, "ak_") {
		s.violate("Create returned %+v for %+v", nk.Key, p)
	}
	e := w.addOwn(nk.ID, nk.Value, p.Name)
	s.authorizeOwned("right after Create", e)
}

func (w *worker) update() {
	s := w.s
	e := w.own[w.rnd.IntN(len(w.own))]
	name := w.nextName("renamed")
	u := apikeys.UpdateParams{Name: &name}
	if w.rnd.IntN(2) == 0 {
		o := w.origins()
		u.AllowedOrigins = &o
	}
	if w.rnd.IntN(2) == 0 {
		a := w.assistants()
		u.AllowedAssistants = &a
	}
	if w.rnd.IntN(2) == 0 {
		u.TransientAssistant = new(w.rnd.IntN(2) == 0)
	}
	switch w.rnd.IntN(4) {
	case 0:
		u.ExpiresAt = new(w.expiry())
	case 1:
		u.ExpiresAt = new(time.Time{}) // remove the expiry
	}
	k, err := s.update(w.user.id, e.id, u)
	if err != nil {
		// Only this worker writes the key, and Update retries conflicts
		// with the last-used writer: even ErrConflict is unexpected.
		s.unexpectedErr("Update of own key", err)
		return
	}
	s.checkKey("Update", k, e)
	if k.Name != name {
		s.violate("Update of %s returned name %q, want %q", e.id, k.Name, name)
	}
	w.user.setName(e, name)
	s.authorizeOwned("right after Update", e)
	if w.rnd.IntN(3) == 0 {
		k, err := s.get(w.user.id, e.id)
		if err != nil {
			s.unexpectedErr("Get of own key after Update", err)
			return
		}
		s.checkKey("Get after Update", k, e)
		if k.Name != name {
			s.violate("Get right after Update of %s shows name %q, want %q", e.id, k.Name, name)
		}
	}
}

func (w *worker) delete() {
	s := w.s
	e := w.takeOwn()
	w.user.beginDelete(e)
	k, err := s.delete(w.user.id, e.id)
	if err != nil {
		s.unexpectedErr("Delete of own key", err)
		w.user.endDelete(e, false)
		return
	}
	s.checkKey("Delete", k, e)
	w.user.endDelete(e, true)
	s.expectDead("right after Delete", e)
	if w.rnd.IntN(5) == 0 {
		if _, err := s.delete(w.user.id, e.id); !errors.Is(err, apikeys.ErrNotFound) {
			s.violate("second Delete of %s: err %v, want ErrNotFound", e.id, err)
		}
	}
}

func (w *worker) rotate() {
	s := w.s
	var e *entry
	var grace time.Duration
	if w.rnd.IntN(4) == 0 {
		grace = time.Hour // the old key keeps working
		e = w.own[w.rnd.IntN(len(w.own))]
	} else {
		e = w.takeOwn()
		w.user.beginDelete(e)
	}
	nk, err := s.rotate(w.user.id, e.id, grace)
	if errors.Is(err, apikeys.ErrAlreadyRotated) {
		// An earlier Rotate with a grace period left e working, with a
		// successor: it is not rotated twice.
		if grace == 0 {
			w.user.endDelete(e, false)
		}
		return
	}
	if err != nil {
		s.unexpectedErr(fmt.Sprintf("Rotate(grace %s) of own key", grace), err)
		if grace == 0 {
			w.user.endDelete(e, false)
		}
		return
	}
	name := w.user.nameOf(e)
	if nk.UserID != w.user.id || nk.Name != name || nk.ID == e.id || nk.Value == e.value {
		s.violate("Rotate of %s (%q) returned %+v", e.id, name, nk.Key)
	}
	ne := w.addOwn(nk.ID, nk.Value, nk.Name)
	if grace == 0 {
		w.user.endDelete(e, true)
		s.expectDead("right after Rotate(grace 0)", e)
	} else {
		s.authorizeOwned("old key right after Rotate(grace 1h)", e)
	}
	s.authorizeOwned("new key right after Rotate", ne)
}

// authorize presents a random live key of any user.
func (w *worker) authorize() {
	u := w.s.users[w.rnd.IntN(len(w.s.users))]
	if e := u.pickLive(w.rnd); e != nil {
		w.s.authorizeLive("Authorize", e)
	}
}

// get reads a random live key of the worker's user, perhaps another
// worker's.
func (w *worker) get() {
	s := w.s
	e := w.user.pickLive(w.rnd)
	if e == nil {
		return
	}
	k, err := s.get(w.user.id, e.id)
	switch {
	case err == nil:
		s.checkKey("Get", k, e)
		if e.owner == w.n {
			if want := w.user.nameOf(e); k.Name != want {
				s.violate("Get of own key %s shows name %q, want %q", e.id, k.Name, want)
			}
		}
	case errors.Is(err, apikeys.ErrNotFound):
		if w.user.stateOf(e) == stLive {
			s.violate("Get: live key %s of %s not found", e.id, w.user.id)
		} else {
			s.races.Add(1)
		}
	default:
		s.unexpectedErr("Get", err)
	}
}

// list pages through a user's keys (usually the worker's own user) and
// checks the listing against the keys whose state was settled before it
// began: every key live then and still live after must be listed, no key
// whose deletion returned before it began may be, and no key of another
// user may be.
func (w *worker) list() {
	s := w.s
	u := w.user
	if w.rnd.IntN(4) == 0 {
		u = s.users[w.rnd.IntN(len(s.users))]
	}
	u.mu.Lock()
	start := u.seq
	u.mu.Unlock()

	seen := s.listAll("List", u)
	if seen == nil {
		return
	}

	var unknown []uuid.UUID
	u.mu.Lock()
	for _, e := range u.live {
		if e.liveSeq <= start && !seen[e.id] {
			s.listMisses.Add(1)
			s.note("LISTING MISSED A KEY", "List of %s misses key %s, live since before the listing began", u.id, e.id)
		}
	}
	for id := range seen {
		e := u.all[id]
		switch {
		case e == nil:
			unknown = append(unknown, id) // a Create not yet registered, or not ours
		case e.state == stDeleted && e.deadSeq <= start:
			s.violate("List of %s shows key %s, deleted before the listing began", u.id, id)
		}
	}
	u.mu.Unlock()
	for _, id := range unknown {
		if other, ok := s.owners.Load(id); ok && other.(*userReg) != u {
			s.violate("List of %s shows key %s of %s", u.id, id, other.(*userReg).id)
		}
	}
}

// foreign tries to read or change another user's live key as this
// worker's user: it must be ErrNotFound, and the key must keep working.
func (w *worker) foreign() {
	s := w.s
	other := s.users[(w.n+1+w.rnd.IntN(numUsers-1))%numUsers]
	if other == w.user {
		panic("foreign picked own user")
	}
	e := other.pickLive(w.rnd)
	if e == nil {
		return
	}
	me := w.user.id
	var what string
	var err error
	switch w.rnd.IntN(4) {
	case 0:
		what = "Get"
		_, err = s.get(me, e.id)
	case 1:
		what = "Update"
		name := intruder + " " + me
		_, err = s.update(me, e.id, apikeys.UpdateParams{Name: &name, AllowedOrigins: &[]string{"https://evil.example.net"}})
	case 2:
		what = "Delete"
		_, err = s.delete(me, e.id)
	default:
		what = "Rotate"
		var nk apikeys.NewKey
		nk, err = s.rotate(me, e.id, 0)
		if err == nil {
			s.owners.Store(nk.ID, other)
		}
	}
	switch {
	case errors.Is(err, apikeys.ErrNotFound):
	case err == nil:
		s.violate("%s of %s's key %s as %s succeeded", what, other.id, e.id, me)
	default:
		s.unexpectedErr(what+" of another user's key", err)
	}
	s.authorizeLive("Authorize after a foreign "+what, e)
}

// dead checks a random deleted key, perhaps long deleted.
func (w *worker) dead() {
	u := w.s.users[w.rnd.IntN(len(w.s.users))]
	if e := u.pickDead(w.rnd); e != nil {
		w.s.expectDead("later", e)
	}
}

func runSoak(t *testing.T, v variant, store apikeys.Store, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Minute)
	defer cancel()
	s := &soak{ctx: ctx}
	cfg := &apikeys.Config{
		// Short, so that last-used writes race with the other writes
		// several times per run. Each background flush is bounded by the
		// larger of the interval and 10 s, and on a contended SQLite or
		// MariaDB a batch can take longer than that under -race (the flusher then logs and retries,
		// which this soak counts apart; see logCounter).
		LastUsedInterval: time.Second,
		ErrorLog:         slog.New(logCounter{s}),
		OpTimeout:        soakOpTimeout,
	}
	if v.cache {
		// A TTL longer than the soak: any stale answer is the cache's
		// invalidation failing, never an entry that happened to expire.
		cfg.Cache = &apikeys.CacheConfig{TTL: time.Hour, NegativeTTL: time.Hour}
		if inv, ok := store.(apikeys.Invalidator); ok {
			cfg.Invalidator = inv
		}
	}
	m, err := apikeys.New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.m = m
	closed := false
	t.Cleanup(func() { // after a t.Fatal; runs before the store's clean-up
		if !closed {
			_ = m.Close(context.Background())
		}
	})
	for i := range numUsers {
		s.users = append(s.users, &userReg{id: fmt.Sprintf("soak-user-%d", i), all: make(map[uuid.UUID]*entry)})
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("%s: soaking for %s with %d workers over %d users (seed %d)", v.name, d, numWorkers, numUsers, seed)
	stop := make(chan struct{})
	timer := time.AfterFunc(d, func() { close(stop) })
	defer timer.Stop()
	var wg sync.WaitGroup
	begin := time.Now()
	for i := range numWorkers {
		w := &worker{s: s, n: i, user: s.users[i%numUsers], rnd: rand.New(rand.NewPCG(seed, uint64(i)))}
		wg.Go(func() { w.run(stop) })
	}
	wg.Wait()
	elapsed := time.Since(begin)
	var counts [numOps]int64
	var total int64
	for i := range counts {
		counts[i] = s.counts[i].Load()
		total += counts[i]
	}

	// Quiescent: every key's state is settled, so the checks are exact.
	var live, dead, lost int
	for _, u := range s.users {
		seen := s.listAll("final List", u)
		u.mu.Lock()
		want := append([]*entry(nil), u.live...)
		dead += u.numDead
		lost += u.numLost
		deadKeys := append([]*entry(nil), u.dead...)
		rand.Shuffle(len(deadKeys), func(i, j int) { deadKeys[i], deadKeys[j] = deadKeys[j], deadKeys[i] })
		deadKeys = deadKeys[:min(len(deadKeys), finalDeadChecks)]
		u.mu.Unlock()
		live += len(want)
		if seen != nil {
			for _, e := range want {
				if !seen[e.id] {
					s.violate("final List of %s misses live key %s", u.id, e.id)
				}
				delete(seen, e.id)
			}
			for id := range seen {
				if e := u.all[id]; e == nil || e.state != stUnknown {
					s.violate("final List of %s shows key %s, which is not live", u.id, id)
				}
			}
		}
		for _, e := range want {
			s.authorizeOwned("final", e)
			other := s.users[(slices.Index(s.users, u)+1)%numUsers]
			if _, err := s.get(other.id, e.id); !errors.Is(err, apikeys.ErrNotFound) {
				s.violate("final: Get of %s's key %s as %s: err %v, want ErrNotFound", u.id, e.id, other.id, err)
			}
		}
		for _, e := range deadKeys {
			s.expectDead("final", e)
		}
	}
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer closeCancel()
	closed = true
	if err := m.Close(closeCtx); err != nil {
		s.unexpectedErr("Manager.Close", err)
	}

	secs := elapsed.Seconds()
	var b strings.Builder
	for i, n := range counts {
		fmt.Fprintf(&b, "%s %.0f/s, ", opNames[i], float64(n)/secs)
	}
	t.Logf("%s: %d ops in %s: %stotal %.0f ops/s; %d full listings",
		v.name, total, elapsed.Round(time.Millisecond), b.String(), float64(total)/secs, s.listings.Load())
	t.Logf("%s: errors: %d unexpected, %d invariant violations (and %d keys missed by listings), %d expected not-found races, %d last-used flushes timed out and retried; keys at end: %d live, %d deleted",
		v.name, s.unexpected.Load(), s.violations.Load(), s.listMisses.Load(), s.races.Load(), s.flushTimeouts.Load(), live, dead)
	if lost > 0 {
		t.Logf("%s: %d keys in an unknown state after failed deletions", v.name, lost)
	}
	s.mu.Lock()
	msgs := s.msgs
	s.mu.Unlock()
	var missed []string
	for _, msg := range msgs {
		if strings.HasPrefix(msg, "LISTING MISSED A KEY") {
			missed = append(missed, msg)
		} else {
			t.Error(msg)
		}
	}
	if n, k := s.unexpected.Load(), s.violations.Load(); n+k > 0 {
		t.Errorf("%s: %d unexpected errors and %d invariant violations (the first %d above)", v.name, n, k, maxMsgs)
	}
	t.Run("listings-complete", func(t *testing.T) {
		n := s.listMisses.Load()
		for _, msg := range missed {
			t.Error(msg)
		}
		if n > 0 {
			t.Errorf("%s: listings missed %d keys that were live before they began", v.name, n)
		}
	})
}
