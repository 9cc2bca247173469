package sqlstore

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSeqWindow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w := newSeqWindow(10)
	require.False(t, w.add(10, t0), "the start is read already")
	require.False(t, w.add(3, t0), "below the start")
	require.True(t, w.add(11, t0))
	require.False(t, w.add(11, t0), "twice")
	require.Empty(t, w.pending())

	// 12 and 13 are missing when 14 is read: a row committed after a later
	// one is delivered when it shows up, once.
	require.True(t, w.add(14, t0))
	require.Equal(t, []int64{12, 13}, w.pending())
	require.True(t, w.add(13, t0.Add(time.Second)))
	require.False(t, w.add(13, t0.Add(time.Second)))
	require.Equal(t, []int64{12}, w.pending())
	w.expire(t0.Add(gapGrace - time.Nanosecond))
	require.Equal(t, []int64{12}, w.pending(), "given up before gapGrace")
	w.expire(t0.Add(gapGrace))
	require.Empty(t, w.pending(), "still looked for after gapGrace")
	require.False(t, w.add(12, t0.Add(gapGrace)), "a seq given up is not delivered")
	require.Equal(t, int64(14), w.hi)

	// A jump far ahead (an auto_increment_increment, a restart) looks
	// for at most maxMissing seqs, the highest.
	require.True(t, w.add(1_000_000, t0))
	p := w.pending()
	require.Len(t, p, maxMissing)
	require.Equal(t, int64(1_000_000-maxMissing), p[0])
	require.Equal(t, int64(999_999), p[len(p)-1])

	// Past maxMissing, the lowest go first.
	require.True(t, w.add(1_000_010, t0))
	require.Len(t, w.pending(), maxMissing+9)
	w.expire(t0)
	p = w.pending()
	require.Len(t, p, maxMissing)
	require.Equal(t, int64(1_000_009), p[len(p)-1])
	require.Equal(t, int64(1_000_010-1-maxMissing), p[0])
}

func TestChannel(t *testing.T) {
	t.Parallel()
	require.Equal(t, "apikeys:api_keys", channelFor("api_keys"))
	require.Equal(t, `LISTEN "apikeys:Api_Keys2"`, listenStatement(channelFor("Api_Keys2")))
	longest := channelFor("_" + strings.Repeat("k", MaxTableLen-1))
	require.LessOrEqual(t, len(longest), 63, "PostgreSQL truncates identifiers to 63 bytes")
}
