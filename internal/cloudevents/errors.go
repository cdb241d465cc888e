package cloudevents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/group"
)

// Error codes, the "error" member of every error body.
const (
	codeInvalidEvent     = "invalid_event"
	codeInvalidRequest   = "invalid_request"
	codeInvalidTopic     = "invalid_topic"
	codeUnknownTopic     = "unknown_topic"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeTooLarge         = "too_large"
	codeUnsupportedMedia = "unsupported_media_type"
	codeBackpressure     = "backpressure"
	codeUnavailable      = "storage_unavailable"
	codeConflict         = "conflict"
	codeForbidden        = "forbidden"
	codeInvalidRecord    = "invalid_record"
	codeInternal         = "internal"
)

// ErrClosed is returned for requests after Close.
var ErrClosed = errors.New("cloudevents: gateway closed")

// apiError is an HTTP error answer; its JSON is the response body:
//
//	{"status":400,"error":"invalid_event","message":"...","attribute":"time","event":2}
type apiError struct {
	Status    int    `json:"status"`
	Code      string `json:"error"`
	Message   string `json:"message"`
	Attribute string `json:"attribute,omitempty"`
	// Index is the position of the offending event in a batch.
	Index *int `json:"event,omitempty"`
	// Records lists every event the broker's write gate refused, with
	// why (schema validation), when it refused individual events.
	Records []recordProblem `json:"records,omitempty"`

	retryAfter time.Duration
	allow      string
	// cause, if set, is the error whose text for clients
	// (broker.Broker.ClientMessage: no server paths) completes Message when
	// the answer is written.
	cause error
}

// recordProblem is one refused event of a write: its position in the
// request and the gate's reason.
type recordProblem struct {
	Event   int    `json:"event"`
	Message string `json:"message"`
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Code, e.Message, e.cause)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

func badRequest(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: codeInvalidRequest, Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: codeNotFound, Message: fmt.Sprintf(format, args...)}
}

func methodNotAllowed(method, allow string) *apiError {
	return &apiError{Status: http.StatusMethodNotAllowed, Code: codeMethodNotAllowed,
		Message: fmt.Sprintf("method %s is not allowed here; allowed: %s", method, allow), allow: allow}
}

func unavailable(err error) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: codeUnavailable,
		Message: "storage refused the request", cause: err, retryAfter: time.Second}
}

// toAPIError classifies err into its HTTP answer.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		out := *ae
		var ie *indexedError
		if errors.As(err, &ie) && out.Index == nil {
			i := ie.Index
			out.Index = &i
		}
		return &out
	}
	var out *apiError
	if inv, ok := asInvalid(err); ok {
		out = &apiError{Status: http.StatusBadRequest, Code: codeInvalidEvent, Message: err.Error(), Attribute: inv.Attribute}
	} else {
		switch {
		case errors.Is(err, broker.ErrReservedTopic), errors.Is(err, broker.ErrPolicyViolation):
			out = &apiError{Status: http.StatusForbidden, Code: codeForbidden, Message: err.Error()}
		case errors.Is(err, broker.ErrUnknownTopicOrPartition):
			out = &apiError{Status: http.StatusNotFound, Code: codeUnknownTopic, Message: err.Error()}
		case errors.Is(err, broker.ErrInvalidTopic):
			out = &apiError{Status: http.StatusBadRequest, Code: codeInvalidTopic, Message: err.Error()}
		case errors.Is(err, broker.ErrInvalidRecord), errors.Is(err, broker.ErrInvalidTimestamp):
			out = &apiError{Status: http.StatusUnprocessableEntity, Code: codeInvalidRecord, Message: err.Error()}
		case errors.Is(err, broker.ErrRecordTooLarge):
			out = &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeTooLarge, Message: err.Error()}
		case errors.Is(err, group.ErrIllegalGeneration), errors.Is(err, group.ErrUnknownMemberID),
			errors.Is(err, group.ErrRebalanceInProgress), errors.Is(err, group.ErrNonEmptyGroup):
			out = &apiError{Status: http.StatusConflict, Code: codeConflict,
				Message: fmt.Sprintf("the consumer group is in use by Kafka consumers: %v", err)}
		case errors.Is(err, group.ErrInvalidGroupID):
			out = badRequest("%v", err)
		case errors.Is(err, broker.ErrStorage), errors.Is(err, broker.ErrClosed), errors.Is(err, ErrClosed),
			errors.Is(err, group.ErrStopped), errors.Is(err, group.ErrCoordinatorNotAvailable),
			errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			out = unavailable(err)
		default:
			out = &apiError{Status: http.StatusInternalServerError, Code: codeInternal, cause: err}
		}
	}
	var ie *indexedError
	if errors.As(err, &ie) {
		i := ie.Index
		out.Index = &i
	}
	return out
}

// writeError answers with err's status and JSON body. The body tells no
// server paths: a storage error's details are withheld and logged
// (broker.Broker.ClientMessage), any other text loses the data directory.
func (g *Gateway) writeError(w http.ResponseWriter, err error) {
	ae := toAPIError(err)
	if ae.cause != nil {
		msg := g.b.ClientMessage(ae.cause)
		if ae.Message != "" {
			msg = ae.Message + ": " + msg
		}
		ae.Message = msg
	}
	if ae.allow != "" {
		w.Header().Set("Allow", ae.allow)
	}
	if ae.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((ae.retryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, ae.Status, ae)
}

// writeJSON answers with status and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"status":500,"error":"internal","message":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
