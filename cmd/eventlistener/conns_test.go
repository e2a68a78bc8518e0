package main

import (
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// --http-max-conns: a connection past the cap waits to be accepted until
// one closes, and the gauge follows.
func TestConnectionCap(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	ln := countConns(raw, reg, 1, "http", "--http-max-conns")
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for range 2 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first := <-accepted
	select {
	case <-accepted:
		t.Fatal("a second connection was accepted past --http-max-conns 1")
	case <-time.After(200 * time.Millisecond):
	}
	gauge := func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "eventlistener_http_connections" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return -1
	}
	if g := gauge(); g != 1 {
		t.Fatalf("eventlistener_http_connections = %v, want 1", g)
	}
	first.Close()
	select {
	case second := <-accepted:
		second.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting connection was not accepted after the first closed")
	}
	if n := testutil.CollectAndCount(reg, "eventlistener_http_connections_max"); n != 1 {
		t.Fatalf("eventlistener_http_connections_max missing")
	}
}
