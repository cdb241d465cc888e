package cloudevents

import (
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
)

// Schemas frames the JSON data of events posted to a topic whose values
// the broker validates against the schema registry, and unframes it for
// HTTP readers. *schema.Registry implements it; the gateway declares it
// because it must not import the registry.
//
// The rule: data already in the Confluent wire format (magic byte 0, a
// schema id) is stored as sent and checked by the broker's write gate like
// a Kafka producer's; JSON data (datacontenttype absent, application/json,
// text/json or +json) is validated against the subject's schema — the
// version the event's dataschema names when it is a registry address, else
// the latest — and framed with that schema's id, which is what Confluent's
// JSON Schema serializer writes, so Kafka consumers decode it unchanged.
// Only JSON Schema subjects frame JSON; anything else is refused with 422.
type Schemas interface {
	FrameJSON(subject, dataschema string, data []byte) ([]byte, error)
	UnframeJSON(data []byte) ([]byte, bool)
}

// frameValue applies the rule above to one event's record; t validates
// values. Records the gate can judge as they are (framed, or not JSON)
// are left alone.
func (g *Gateway) frameValue(t *broker.Topic, ev *event.Event, rec *batch.Record) error {
	if g.opts.Schemas == nil || rec.Value == nil || (len(rec.Value) > 0 && rec.Value[0] == 0) {
		return nil
	}
	if mt := mediaType(ev.DataContentType()); mt != "" && !isJSONMedia(mt) {
		return nil
	}
	framed, err := g.opts.Schemas.FrameJSON(t.Name+"-value", ev.DataSchema(), rec.Value)
	if err != nil {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: codeInvalidRecord,
			Message: "data refused by topic " + t.Name + "'s schema validation: " + err.Error()}
	}
	rec.Value = framed
	return nil
}

// egressData serves the data of a JSON event the gateway framed (or a
// Kafka producer wrote with a JSON Schema serializer) as the JSON document
// itself to HTTP readers.
func (g *Gateway) egressData(ev *event.Event) {
	if g.opts.Schemas == nil || len(ev.DataEncoded) == 0 || ev.DataEncoded[0] != 0 {
		return
	}
	if mt := mediaType(ev.DataContentType()); mt != "" && !isJSONMedia(mt) {
		return
	}
	if doc, ok := g.opts.Schemas.UnframeJSON(ev.DataEncoded); ok {
		setEgressData(ev, doc)
	}
}
