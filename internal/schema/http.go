package schema

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Content types of the REST API. Responses use the first unless a client
// asks only for application/json.
const (
	ContentType        = "application/vnd.schemaregistry.v1+json"
	contentTypeGeneric = "application/vnd.schemaregistry+json"
	contentTypeJSON    = "application/json"
)

// HandlerOptions configure the REST handler.
type HandlerOptions struct {
	// MaxBodyBytes bounds request bodies; default 16 MiB.
	MaxBodyBytes int64
	// WriteTimeout bounds a change's wait for the store; default 30 s.
	WriteTimeout time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

type handler struct {
	reg  *Registry
	opts HandlerOptions
	mux  *http.ServeMux
}

// Handler serves the Confluent Schema Registry REST API at the root.
func Handler(reg *Registry, opts HandlerOptions) http.Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 16 << 20
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &handler{reg: reg, opts: opts, mux: http.NewServeMux()}
	routes := []struct {
		pattern string
		fn      func(*http.Request) (any, error)
	}{
		{"GET /{$}", func(*http.Request) (any, error) { return struct{}{}, nil }},
		{"GET /schemas/types", func(*http.Request) (any, error) { return Types, nil }},
		{"GET /schemas", h.getSchemas},
		{"GET /schemas/ids/{id}", h.getSchemaByID},
		{"GET /schemas/ids/{id}/schema", h.getRawSchemaByID},
		{"GET /schemas/ids/{id}/subjects", h.getSubjectsByID},
		{"GET /schemas/ids/{id}/versions", h.getVersionsByID},
		{"GET /subjects", h.getSubjects},
		{"POST /subjects/{subject}", h.lookup},
		{"POST /subjects/{subject}/{$}", h.lookup},
		{"DELETE /subjects/{subject}", h.deleteSubject},
		{"GET /subjects/{subject}/versions", h.getVersions},
		{"POST /subjects/{subject}/versions", h.register},
		{"GET /subjects/{subject}/versions/{version}", h.getVersion},
		{"DELETE /subjects/{subject}/versions/{version}", h.deleteVersion},
		{"GET /subjects/{subject}/versions/{version}/schema", h.getRawVersion},
		{"GET /subjects/{subject}/versions/{version}/referencedby", h.getReferencedBy},
		{"POST /compatibility/subjects/{subject}/versions/{version}", h.checkCompatibility},
		{"POST /compatibility/subjects/{subject}/versions", h.checkCompatibility},
		{"GET /config", h.getConfig},
		{"PUT /config", h.putConfig},
		{"DELETE /config", h.deleteConfig},
		{"GET /config/{subject}", h.getConfig},
		{"PUT /config/{subject}", h.putConfig},
		{"DELETE /config/{subject}", h.deleteConfig},
		{"GET /mode", h.getMode},
		{"PUT /mode", h.putMode},
		{"DELETE /mode", h.deleteMode},
		{"GET /mode/{subject}", h.getMode},
		{"PUT /mode/{subject}", h.putMode},
		{"DELETE /mode/{subject}", h.deleteMode},
	}
	for _, rt := range routes {
		h.mux.Handle(rt.pattern, h.wrap(rt.fn))
	}
	return h
}

// rawText is a response written as is (a schema's own text).
type rawText string

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); pattern == "" {
		// Let the mux decide between 404 and 405, then answer in JSON.
		sc := &statusCapture{header: http.Header{}}
		h.mux.ServeHTTP(sc, r)
		code := sc.code
		if code == 0 {
			code = http.StatusNotFound
		}
		if allow := sc.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		h.writeError(w, r, &Error{Code: code, Message: "HTTP " + strconv.Itoa(code) + " " + http.StatusText(code)})
		return
	}
	h.mux.ServeHTTP(w, r)
}

type statusCapture struct {
	header http.Header
	code   int
}

func (s *statusCapture) Header() http.Header         { return s.header }
func (s *statusCapture) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusCapture) WriteHeader(code int)        { s.code = code }

func (h *handler) wrap(fn func(*http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
				h.writeError(w, r, err)
				return
			}
		}
		v, err := fn(r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", responseType(r))
		if raw, ok := v.(rawText); ok {
			_, _ = io.WriteString(w, string(raw))
			return
		}
		body, err := json.Marshal(v)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		_, _ = w.Write(body)
	})
}

func checkContentType(ct string) error {
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		switch mt {
		case ContentType, contentTypeGeneric, contentTypeJSON, "application/octet-stream":
			return nil
		}
	}
	return &Error{Code: codeUnsupportedMediaType, Message: "HTTP 415 Unsupported Media Type"}
}

// responseType picks the response content type from Accept: the registry
// type unless the client lists application/json and not the registry's.
func responseType(r *http.Request) string {
	accept := r.Header.Get("Accept")
	if strings.Contains(accept, contentTypeJSON) && !strings.Contains(accept, "application/vnd.schemaregistry") {
		return contentTypeJSON
	}
	return ContentType
}

type errorBody struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := errors.AsType[*Error](err)
	if !ok {
		e = &Error{Code: codeInternal, Message: err.Error()}
	}
	status := e.Status()
	if status >= 500 {
		h.opts.Logger.Error("schema registry: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	body, _ := json.Marshal(errorBody{ErrorCode: e.Code, Message: e.Message})
	w.Header().Set("Content-Type", responseType(r))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// decode reads a JSON request body into v.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &Error{Code: codePayloadTooLarge, Message: "Request body too large: " + err.Error()}
		}
		if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return &Error{Code: codeUnprocessable, Message: "Unprocessable request body: " + err.Error()}
		}
		if errors.Is(err, io.EOF) {
			return &Error{Code: codeBadRequest, Message: "Request body is empty"}
		}
		return &Error{Code: codeBadRequest, Message: "Malformed JSON request body: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &Error{Code: codeBadRequest, Message: "Malformed JSON request body: data after the JSON object"}
	}
	return nil
}

func queryFlag(r *http.Request, name string) bool {
	b, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return b
}

// writeContext bounds a change's wait for the store.
func (h *handler) writeContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.opts.WriteTimeout)
}

func timeoutAware(ctx context.Context, err error) error {
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		return &Error{Code: CodeOperationTimeout, Message: "Operation timed out: " + err.Error(), cause: err}
	}
	return err
}

// schemaBody is a schema as requests carry it (registration, lookup,
// compatibility), with the id and version IMPORT mode accepts.
type schemaBody struct {
	Schema     string          `json:"schema"`
	SchemaType string          `json:"schemaType,omitempty"`
	References []Reference     `json:"references,omitempty"`
	ID         int             `json:"id,omitempty"`
	Version    int             `json:"version,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	RuleSet    json.RawMessage `json:"ruleSet,omitempty"`
}

func (b schemaBody) schema() Schema {
	return Schema{Type: Type(strings.ToUpper(b.SchemaType)), Schema: b.Schema, References: b.References}
}

// schemaResponse is a schema by id.
type schemaResponse struct {
	SchemaType Type        `json:"schemaType,omitempty"`
	Schema     string      `json:"schema"`
	References []Reference `json:"references,omitempty"`
}

// versionResponse is one subject version.
type versionResponse struct {
	Subject    string      `json:"subject"`
	Version    int         `json:"version"`
	ID         int         `json:"id"`
	SchemaType Type        `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
	Schema     string      `json:"schema"`
}

func typeField(t Type) Type {
	if t == Avro {
		return ""
	}
	return t
}

func versionOut(v Version) versionResponse {
	return versionResponse{Subject: v.Subject, Version: v.Version, ID: v.ID, SchemaType: typeField(v.Type), References: v.References, Schema: v.Schema}
}

func pathID(r *http.Request) (int, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 0 {
		return 0, &Error{Code: codeNotFound, Message: "HTTP 404 Not Found"}
	}
	return id, nil
}

func (h *handler) getSchemaByID(r *http.Request) (any, error) {
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	s, err := h.reg.SchemaByID(id)
	if err != nil {
		return nil, err
	}
	return schemaResponse{SchemaType: typeField(s.Type), Schema: s.Schema, References: s.References}, nil
}

func (h *handler) getRawSchemaByID(r *http.Request) (any, error) {
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	s, err := h.reg.SchemaByID(id)
	if err != nil {
		return nil, err
	}
	return rawText(s.Schema), nil
}

func (h *handler) getSubjectsByID(r *http.Request) (any, error) {
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	return h.reg.SubjectsByID(id, queryFlag(r, "deleted"))
}

func (h *handler) getVersionsByID(r *http.Request) (any, error) {
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	return h.reg.VersionsByID(id, queryFlag(r, "deleted"))
}

func (h *handler) getSchemas(r *http.Request) (any, error) {
	vs := h.reg.Schemas(r.URL.Query().Get("subjectPrefix"), queryFlag(r, "deleted"), queryFlag(r, "latestOnly"))
	out := make([]versionResponse, 0, len(vs))
	for _, v := range vs {
		out = append(out, versionOut(v))
	}
	return out, nil
}

func (h *handler) getSubjects(r *http.Request) (any, error) {
	return h.reg.Subjects(r.URL.Query().Get("subjectPrefix"), queryFlag(r, "deleted"), queryFlag(r, "deletedOnly")), nil
}

func (h *handler) getVersions(r *http.Request) (any, error) {
	return h.reg.Versions(r.PathValue("subject"), queryFlag(r, "deleted"), queryFlag(r, "deletedOnly"))
}

func (h *handler) getVersion(r *http.Request) (any, error) {
	v, err := h.reg.GetVersion(r.PathValue("subject"), r.PathValue("version"), queryFlag(r, "deleted"))
	if err != nil {
		return nil, err
	}
	return versionOut(v), nil
}

func (h *handler) getRawVersion(r *http.Request) (any, error) {
	v, err := h.reg.GetVersion(r.PathValue("subject"), r.PathValue("version"), queryFlag(r, "deleted"))
	if err != nil {
		return nil, err
	}
	return rawText(v.Schema), nil
}

func (h *handler) getReferencedBy(r *http.Request) (any, error) {
	return h.reg.ReferencedBy(r.PathValue("subject"), r.PathValue("version"), queryFlag(r, "deleted"))
}

func (h *handler) register(r *http.Request) (any, error) {
	var b schemaBody
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	ctx, cancel := h.writeContext(r)
	defer cancel()
	v, err := h.reg.Register(ctx, r.PathValue("subject"), b.schema(), RegisterOptions{ID: b.ID, Version: b.Version})
	if err != nil {
		return nil, timeoutAware(ctx, err)
	}
	return struct {
		ID int `json:"id"`
	}{v.ID}, nil
}

func (h *handler) lookup(r *http.Request) (any, error) {
	var b schemaBody
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	v, err := h.reg.Lookup(r.PathValue("subject"), b.schema(), queryFlag(r, "deleted"))
	if err != nil {
		return nil, err
	}
	return versionOut(v), nil
}

func (h *handler) deleteSubject(r *http.Request) (any, error) {
	ctx, cancel := h.writeContext(r)
	defer cancel()
	vs, err := h.reg.DeleteSubject(ctx, r.PathValue("subject"), queryFlag(r, "permanent"))
	return vs, timeoutAware(ctx, err)
}

func (h *handler) deleteVersion(r *http.Request) (any, error) {
	ctx, cancel := h.writeContext(r)
	defer cancel()
	v, err := h.reg.DeleteVersion(ctx, r.PathValue("subject"), r.PathValue("version"), queryFlag(r, "permanent"))
	return v, timeoutAware(ctx, err)
}

type compatibilityResponse struct {
	IsCompatible bool     `json:"is_compatible"`
	Messages     []string `json:"messages,omitempty"`
}

func (h *handler) checkCompatibility(r *http.Request) (any, error) {
	var b schemaBody
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	msgs, err := h.reg.CheckCompatibility(r.PathValue("subject"), r.PathValue("version"), b.schema())
	if err != nil {
		return nil, err
	}
	out := compatibilityResponse{IsCompatible: len(msgs) == 0}
	if queryFlag(r, "verbose") {
		out.Messages = msgs
		if out.Messages == nil {
			out.Messages = []string{}
		}
	}
	return out, nil
}

type levelResponse struct {
	CompatibilityLevel Level `json:"compatibilityLevel"`
}

type levelRequest struct {
	Compatibility      string `json:"compatibility"`
	CompatibilityLevel string `json:"compatibilityLevel"`
}

func (h *handler) getConfig(r *http.Request) (any, error) {
	l, err := h.reg.Config(r.PathValue("subject"), queryFlag(r, "defaultToGlobal"))
	if err != nil {
		return nil, err
	}
	return levelResponse{l}, nil
}

func (h *handler) putConfig(r *http.Request) (any, error) {
	var b levelRequest
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	if b.Compatibility == "" {
		b.Compatibility = b.CompatibilityLevel
	}
	l, err := ParseLevel(b.Compatibility)
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.writeContext(r)
	defer cancel()
	if err := h.reg.SetConfig(ctx, r.PathValue("subject"), l); err != nil {
		return nil, timeoutAware(ctx, err)
	}
	return struct {
		Compatibility Level `json:"compatibility"`
	}{l}, nil
}

func (h *handler) deleteConfig(r *http.Request) (any, error) {
	ctx, cancel := h.writeContext(r)
	defer cancel()
	l, err := h.reg.DeleteConfig(ctx, r.PathValue("subject"))
	if err != nil {
		return nil, timeoutAware(ctx, err)
	}
	return levelResponse{l}, nil
}

type modeBody struct {
	Mode string `json:"mode"`
}

func (h *handler) getMode(r *http.Request) (any, error) {
	m, err := h.reg.Mode(r.PathValue("subject"), queryFlag(r, "defaultToGlobal"))
	if err != nil {
		return nil, err
	}
	return modeBody{string(m)}, nil
}

func (h *handler) putMode(r *http.Request) (any, error) {
	var b modeBody
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	m, err := ParseMode(b.Mode)
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.writeContext(r)
	defer cancel()
	if err := h.reg.SetMode(ctx, r.PathValue("subject"), m, queryFlag(r, "force")); err != nil {
		return nil, timeoutAware(ctx, err)
	}
	return modeBody{string(m)}, nil
}

func (h *handler) deleteMode(r *http.Request) (any, error) {
	ctx, cancel := h.writeContext(r)
	defer cancel()
	m, err := h.reg.DeleteMode(ctx, r.PathValue("subject"))
	if err != nil {
		return nil, timeoutAware(ctx, err)
	}
	return modeBody{string(m)}, nil
}
