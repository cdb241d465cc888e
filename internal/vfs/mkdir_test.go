package vfs

import "testing"

func TestMkdirAllDurableSurvivesCrash(t *testing.T) {
	m := NewMem()
	if err := MkdirAllDurable(m, "/a/b/c", 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := m.Create("/a/b/c/x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("hi"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/a/b/c"); err != nil {
		t.Fatal(err)
	}
	c := m.CrashStrict()
	got, err := c.ReadFile("/a/b/c/x")
	if err != nil || string(got) != "hi" {
		t.Fatalf("after crash: %q, %v", got, err)
	}
	// Plain MkdirAll is not durable: the control case.
	if err := m.MkdirAll("/p/q", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CrashStrict().Stat("/p/q"); err == nil {
		t.Fatal("MkdirAll without sync survived a crash; the test above proves nothing")
	}
}
