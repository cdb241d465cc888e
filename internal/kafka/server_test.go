package kafka

import (
	"net"
	"testing"
	"time"
)

func TestOptions(t *testing.T) {
	d := testOptions(t).Defaults()
	if d.Logger == nil || d.MaxFrameBytes != 100<<20 || d.MaxConnections != 10000 || d.IdleTimeout != 10*time.Minute {
		t.Fatalf("defaults %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]Options{
		"negative frame":       {MaxFrameBytes: -1},
		"tiny frame":           {MaxFrameBytes: 10},
		"negative connections": {MaxConnections: -1},
		"negative idle":        {IdleTimeout: -time.Second},
		"negative node":        {NodeID: -1},
		"port":                 {AdvertisedPort: 70000},
		"no broker":            {},
	} {
		if name != "no broker" {
			o.Broker, o.Groups = d.Broker, d.Groups
		}
		if _, err := NewServer(o); err == nil {
			t.Errorf("%s: NewServer accepted %+v", name, o)
		}
	}
}

func TestServeAfterCloseAndSeveralListeners(t *testing.T) {
	s, err := NewServer(testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		go func() { done <- s.Serve(ln) }()
	}
	for _, addr := range addrs {
		ts := &testServer{Server: s, addr: addr}
		apiVersionsOK(t, ts)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatalf("Serve: %v", err)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("listener left open")
	}
}
