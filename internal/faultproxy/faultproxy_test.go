package faultproxy_test

import (
	"bufio"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys/internal/faultproxy"
)

// echoServer answers each line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// guard is the deadline of round trips that must succeed: it only stops a
// broken test, and is no timing.
const guard = time.Minute

func roundTrip(c net.Conn, deadline time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(deadline))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err == nil && line != "ping\n" {
		err = errors.New("bad echo")
	}
	return err
}

func TestProxy(t *testing.T) {
	t.Parallel()
	p, err := faultproxy.Start(echoServer(t))
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })

	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	require.NoError(t, roundTrip(c, guard), "forwards")

	p.Cut()
	err = roundTrip(c, guard)
	require.Error(t, err, "a cut connection fails")
	require.NotErrorIs(t, err, os.ErrDeadlineExceeded, "a cut connection fails at once, not by its deadline")

	p.Down()
	_, err = net.Dial("tcp", p.Addr())
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "down: refused")

	require.NoError(t, p.Up())
	c, err = net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	require.NoError(t, roundTrip(c, guard), "up again on the same address")

	p.Delay(time.Hour)
	require.ErrorIs(t, roundTrip(c, 100*time.Millisecond), os.ErrDeadlineExceeded, "a delayed server times out")
	p.Delay(0)
	require.NoError(t, p.Close(), "Close does not wait out the delay")
}
