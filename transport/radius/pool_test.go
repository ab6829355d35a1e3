package radius

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	radius "layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// waitWorkers waits until s has want handler workers.
func waitWorkers(t *testing.T, s *Server, want int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for s.workerCount() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers, want %d", s.workerCount(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestServerWorkerPool checks the handler workers: requests one after
// another reuse a worker, concurrent ones get one each up to MaxInFlight,
// a worker survives a panicking handler, idle workers leave, and Shutdown
// ends them all.
func TestServerWorkerPool(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 16)
	h := &counting{h: func(ctx context.Context, r *Request) *radius.Packet {
		switch rfc2865.UserName_GetString(r.Packet) {
		case "block":
			started <- struct{}{}
			<-release
		case "panic":
			panic("handler bug")
		}
		return accept(ctx, r)
	}}
	s := &Server{Clients: testClients(t), Handler: h, MaxInFlight: 3, workerIdle: 50 * time.Millisecond}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(pc) }()
	addr := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	c := rawConn(t, "127.0.0.1:0", addr)

	id := byte(0)
	request := func(user string) []byte {
		id++
		return buildRequest(radius.CodeAccessRequest, id, authOf(fmt.Sprintf("pool-%d", id)), []attr{{1, []byte(user)}}, buildOpts{})
	}

	// One after another: a worker is reused. The next request may arrive
	// before the worker that sent the last reply is idle again, so two is
	// the most there can be.
	for range 20 {
		req := request("one")
		send(t, c, req)
		checkReply(t, recv(t, c, 2*time.Second), req, testSecret)
	}
	if n := s.workerCount(); n < 1 || n > 2 {
		t.Errorf("%d workers after sequential requests, want 1 or 2", n)
	}

	// A panic drops the request; the worker carries on.
	send(t, c, request("panic"))
	waitStat(t, s, "handler_panic", 1)
	req := request("after-panic")
	send(t, c, req)
	checkReply(t, recv(t, c, 2*time.Second), req, testSecret)

	// Concurrent: one worker each, never more than MaxInFlight.
	var blocked [][]byte
	for range 5 {
		req := request("block")
		blocked = append(blocked, req)
		send(t, c, req)
	}
	for range 3 {
		<-started
	}
	waitStat(t, s, "inflight_dropped", 2)
	if n := s.workerCount(); n != 3 {
		t.Errorf("%d workers with 3 handlers blocked, want 3", n)
	}
	close(release)
	answered := 0
	for range 3 {
		r := recv(t, c, 2*time.Second)
		if r == nil {
			t.Fatal("missing reply")
		}
		for _, b := range blocked {
			if r[1] == b[1] {
				checkReply(t, r, b, testSecret)
				answered++
			}
		}
	}
	if answered != 3 {
		t.Errorf("%d replies to the blocked requests, want 3", answered)
	}

	// Idle workers leave after one to two idle periods.
	waitWorkers(t, s, 0)
	req = request("again")
	send(t, c, req)
	checkReply(t, recv(t, c, 2*time.Second), req, testSecret)
	waitWorkers(t, s, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-served
	if n := s.workerCount(); n != 0 {
		t.Errorf("%d workers after Shutdown", n)
	}
}
