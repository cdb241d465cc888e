package cloudevents

import (
	"net/http"
	"testing"
)

// FuzzDecode feeds untrusted request bodies and ce-* header values through
// every ingress decoder: none may panic, and an accepted event must
// convert to a Kafka record.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1}}`), "1.0", "/s%20x")
	f.Add([]byte(`[{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"AAE="}]`), "1.0", "")
	f.Add([]byte(`{"specversion":"1.0","id":"","source":"","type":"t","time":"bad"}`), "0.3", "%zz")
	f.Add([]byte(`[`), "", "%")
	f.Fuzz(func(t *testing.T, body []byte, spec, source string) {
		if ev, err := decodeStructured(body); err == nil {
			if _, err := eventToRecord(&ev); err != nil {
				t.Logf("structured event rejected on conversion: %v", err)
			}
		}
		if evs, err := decodeBatch(body, 10); err == nil {
			for i := range evs {
				_, _ = eventToRecord(&evs[i])
			}
		}
		h := http.Header{}
		h.Set("ce-specversion", spec)
		h.Set("ce-id", "id")
		h.Set("ce-source", source)
		h.Set("ce-type", "t")
		h.Set("ce-x"+source, spec)
		h.Set("Content-Type", "application/json")
		if ev, err := decodeBinary(h, body, len(body) > 0); err == nil {
			_, _ = eventToRecord(&ev)
		}
		_ = percentEncode(percentDecode(source))
	})
}
