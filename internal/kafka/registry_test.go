package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRegistry checks every registered API against kmsg: the key exists,
// a handler is set, and the advertised range is one kmsg can decode.
func TestRegistry(t *testing.T) {
	if len(apis) == 0 {
		t.Fatal("no APIs registered")
	}
	for key, a := range apis {
		if a.Key != key {
			t.Errorf("table key %d holds api %d", key, a.Key)
		}
		req := kmsg.RequestForKey(key)
		if req == nil {
			t.Errorf("key %d unknown to kmsg", key)
			continue
		}
		if a.Handle == nil {
			t.Errorf("%s (%d) has no handler", kmsg.NameForKey(key), key)
		}
		if a.MinVersion < 0 || a.MinVersion > a.MaxVersion || a.MaxVersion > req.MaxVersion() {
			t.Errorf("%s (%d) range %d-%d outside kmsg's 0-%d",
				kmsg.NameForKey(key), key, a.MinVersion, a.MaxVersion, req.MaxVersion())
		}
	}
	if _, ok := apis[18]; !ok {
		t.Error("ApiVersions is not registered")
	}
}

func TestRegisterRejects(t *testing.T) {
	h := func(*Server, *Conn, kmsg.Request) Reply { return NoReply() }
	for name, a := range map[string]api{
		"duplicate":    {Key: 18, MaxVersion: 3, Handle: h},
		"unknown key":  {Key: 9999, Handle: h},
		"no handler":   {Key: 12},
		"inverted":     {Key: 12, MinVersion: 2, MaxVersion: 1, Handle: h},
		"negative":     {Key: 12, MinVersion: -1, Handle: h},
		"above kmsg's": {Key: 12, MaxVersion: 99, Handle: h},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: register did not panic", name)
				}
			}()
			register(a)
			delete(apis, a.Key) // undo, should it have been accepted
		}()
	}
}
