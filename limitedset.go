package apikeys

import (
	"sync"

	"github.com/google/uuid"
)

// maxLimitedIDs bounds limitedSet: 65536 ids, about 3 MB. Keys beyond it
// still authorize exactly, at a second round trip each.
const maxLimitedIDs = 1 << 16

// limitedSet remembers the ids of keys this Manager has seen with a rate
// limit or credits, so that authorizing them without the cache reads and
// spends in one round trip (Store.Spend), while every other key is read
// with Store.Get, which costs less than a Spend on some stores (a plain
// read rather than a script or a statement that may write). It only
// chooses between the two: a key read with Get that turns out limited is
// spent from with a second call, and one that Spend shows unlimited is
// forgotten, so a stale entry costs a round trip, never exactness. Only
// keys presented with their right secret are added, so forged keys cannot
// fill it.
type limitedSet struct {
	mu  sync.RWMutex
	ids map[uuid.UUID]struct{}
}

func newLimitedSet() *limitedSet {
	return &limitedSet{ids: make(map[uuid.UUID]struct{})}
}

func (s *limitedSet) has(id uuid.UUID) bool {
	s.mu.RLock()
	_, ok := s.ids[id]
	s.mu.RUnlock()
	return ok
}

// add remembers id, unless the set is full.
func (s *limitedSet) add(id uuid.UUID) {
	s.mu.Lock()
	if len(s.ids) < maxLimitedIDs {
		s.ids[id] = struct{}{}
	}
	s.mu.Unlock()
}

func (s *limitedSet) remove(id uuid.UUID) {
	s.mu.Lock()
	delete(s.ids, id)
	s.mu.Unlock()
}
