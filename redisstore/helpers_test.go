package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// envRedisURL names the real Redis the tests also run against, when set.
const envRedisURL = "APIKEYS_TEST_REDIS_URL"

// envRedisCluster, when set, lists the addresses of a real Redis Cluster
// (comma-separated host:port of some of its nodes) to run against too.
// scripts/redis-topologies.sh starts one and prints the setting.
const envRedisCluster = "APIKEYS_TEST_REDIS_CLUSTER"

// envRedisSentinel, when set, names a real Sentinel deployment to run
// against too, as a go-redis failover URL (redis.ParseFailoverURL): the
// first sentinel's address, the master name and the other sentinels, as in
// redis://127.0.0.1:17200?master_name=apikeys-test&addr=127.0.0.1:17201.
// scripts/redis-topologies.sh starts one and prints the setting.
const envRedisSentinel = "APIKEYS_TEST_REDIS_SENTINEL"

// backend makes a fresh, isolated Redis namespace for one test.
type backend struct {
	name string
	// open returns a client for a new namespace, the namespace, and the
	// miniredis behind it (nil for real Redis). It skips the test when the
	// backend is unavailable and registers all clean-up.
	open func(t testing.TB) (rdb redis.UniversalClient, ns string, mr *miniredis.Miniredis)
}

// backends are miniredis (always), miniredis through a ClusterClient
// (always; miniredis answers CLUSTER SLOTS with itself owning every slot),
// real Redis when APIKEYS_TEST_REDIS_URL is set, a real Redis Cluster
// when APIKEYS_TEST_REDIS_CLUSTER is and a real Sentinel deployment (a
// failover client) when APIKEYS_TEST_REDIS_SENTINEL is.
var backends = []backend{
	{"miniredis", openMiniredis},
	{"miniredis-cluster-client", openMiniredisCluster},
	{"redis", openRealRedis},
	{"redis-cluster", openRealCluster},
	{"redis-sentinel", openRealSentinel},
}

func openMiniredis(t testing.TB) (redis.UniversalClient, string, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb, DefaultNamespace, mr
}

func openMiniredisCluster(t testing.TB) (redis.UniversalClient, string, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{mr.Addr()}})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb, DefaultNamespace, mr
}

// openRealRedis connects to APIKEYS_TEST_REDIS_URL with a random namespace
// and deletes every key of that namespace when the test ends.
func openRealRedis(t testing.TB) (redis.UniversalClient, string, *miniredis.Miniredis) {
	t.Helper()
	url := os.Getenv(envRedisURL)
	if url == "" {
		t.Skip(envRedisURL + " is not set; skipping the tests against a real Redis")
	}
	opts, err := redis.ParseURL(url)
	require.NoError(t, err, envRedisURL)
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	ns := randomNamespace(t)
	t.Cleanup(func() { deleteNamespace(t, rdb, ns) })
	return rdb, ns, nil
}

// openRealCluster connects to APIKEYS_TEST_REDIS_CLUSTER like
// openRealRedis.
func openRealCluster(t testing.TB) (redis.UniversalClient, string, *miniredis.Miniredis) {
	t.Helper()
	rdb := newClusterClient(t)
	ns := randomNamespace(t)
	t.Cleanup(func() { deleteNamespace(t, rdb, ns) })
	return rdb, ns, nil
}

// newClusterClient returns a new client of APIKEYS_TEST_REDIS_CLUSTER,
// closed when t ends, or skips t.
func newClusterClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	addrs := os.Getenv(envRedisCluster)
	if addrs == "" {
		t.Skip(envRedisCluster + " is not set; skipping the tests against a real Redis Cluster (scripts/redis-topologies.sh starts one)")
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// openRealSentinel connects to APIKEYS_TEST_REDIS_SENTINEL like
// openRealRedis, through a failover client.
func openRealSentinel(t testing.TB) (redis.UniversalClient, string, *miniredis.Miniredis) {
	t.Helper()
	rdb := newSentinelClient(t)
	ns := randomNamespace(t)
	t.Cleanup(func() { deleteNamespace(t, rdb, ns) })
	return rdb, ns, nil
}

// sentinelOptions parses APIKEYS_TEST_REDIS_SENTINEL, or skips t.
func sentinelOptions(t testing.TB) *redis.FailoverOptions {
	t.Helper()
	url := os.Getenv(envRedisSentinel)
	if url == "" {
		t.Skip(envRedisSentinel + " is not set; skipping the tests against a real Redis Sentinel deployment (scripts/redis-topologies.sh starts one)")
	}
	opts, err := redis.ParseFailoverURL(url)
	require.NoError(t, err, envRedisSentinel)
	return opts
}

// newSentinelClient returns a new failover client of
// APIKEYS_TEST_REDIS_SENTINEL, closed when t ends, or skips t.
func newSentinelClient(t testing.TB) *redis.Client {
	t.Helper()
	rdb := redis.NewFailoverClient(sentinelOptions(t))
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func randomNamespace(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "apikeys-test-" + hex.EncodeToString(b) + ":"
}

// deleteNamespace deletes the keys under ns (which holds no glob
// characters). It runs in t.Cleanup, after t.Context is canceled.
func deleteNamespace(t testing.TB, rdb redis.UniversalClient, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys := scanNamespace(ctx, t, rdb, ns)
	if len(keys) == 0 {
		return
	}
	// One key per DEL: on Cluster the keys are in many slots.
	pipe := rdb.Pipeline()
	for _, k := range keys {
		pipe.Del(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Errorf("clean-up of namespace %s: %v", ns, err)
	}
}

// scanNamespace lists the keys under ns with SCAN, on every master of a
// cluster.
func scanNamespace(ctx context.Context, t testing.TB, rdb redis.UniversalClient, ns string) []string {
	t.Helper()
	var mu sync.Mutex
	var keys []string
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, ns+"*", 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		t.Fatalf("scanNamespace: %T", rdb)
	}
	if err != nil {
		t.Errorf("SCAN %s*: %v", ns, err)
	}
	return keys
}

// newStore opens a Store on b in a fresh namespace.
func newStore(t testing.TB, b backend, cfg *Config) (*Store, redis.UniversalClient, *miniredis.Miniredis) {
	t.Helper()
	rdb, ns, mr := b.open(t)
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.Namespace = ns
	s, err := New(rdb, &c)
	require.NoError(t, err)
	return s, rdb, mr
}

// forEachBackend runs fn as a parallel subtest per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

// secondClient returns a new client to the server or cluster rdb talks to,
// with its own connections, as another instance of a service would have.
// It is closed when t ends.
func secondClient(t testing.TB, rdb redis.UniversalClient) redis.UniversalClient {
	t.Helper()
	var c redis.UniversalClient
	switch r := rdb.(type) {
	case *redis.Client:
		o := r.Options()
		if o.Addr == "FailoverClient" { // a Sentinel failover client names no address
			c = redis.NewFailoverClient(sentinelOptions(t))
			break
		}
		c = redis.NewClient(&redis.Options{Addr: o.Addr, Username: o.Username, Password: o.Password, DB: o.DB})
	case *redis.ClusterClient:
		o := r.Options()
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: o.Addrs, Username: o.Username, Password: o.Password})
	default:
		t.Fatalf("secondClient: %T", rdb)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
