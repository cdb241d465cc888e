package schema

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a registry error with Confluent's error code. Its HTTP status
// is the code's first three digits (40401 → 404), or the code itself for
// the plain HTTP codes (409, 422, 500 …).
type Error struct {
	Code    int
	Message string
	cause   error
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// Status is the HTTP status the error is answered with.
func (e *Error) Status() int {
	if e.Code >= 10000 {
		return e.Code / 100
	}
	if e.Code >= 100 && e.Code < 600 {
		return e.Code
	}
	return http.StatusInternalServerError
}

// Confluent Schema Registry error codes.
const (
	CodeSubjectNotFound            = 40401
	CodeVersionNotFound            = 40402
	CodeSchemaNotFound             = 40403
	CodeSubjectSoftDeleted         = 40404
	CodeSubjectNotSoftDeleted      = 40405
	CodeVersionSoftDeleted         = 40406
	CodeVersionNotSoftDeleted      = 40407
	CodeSubjectCompatNotConfigured = 40408
	CodeSubjectModeNotConfigured   = 40409
	CodeIncompatibleSchema         = 409
	CodeInvalidSchema              = 42201
	CodeInvalidVersion             = 42202
	CodeInvalidCompatibilityLevel  = 42203
	CodeInvalidMode                = 42204
	CodeOperationNotPermitted      = 42205
	CodeReferenceExists            = 42206
	CodeIDDoesNotMatch             = 42207
	CodeInvalidSubject             = 42208
	CodeStoreError                 = 50001
	CodeOperationTimeout           = 50002
)

// Plain HTTP codes, used where Confluent answers without a specific code.
const (
	codeBadRequest           = 400
	codeNotFound             = 404
	codeMethodNotAllowed     = 405
	codeNotAcceptable        = 406
	codePayloadTooLarge      = 413
	codeUnsupportedMediaType = 415
	codeUnprocessable        = 422
	codeInternal             = 500
)

const (
	maxVersion                       = 1<<31 - 1
	invalidVersionMessageFmt         = "The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
	invalidCompatibilityLevelMessage = "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"
)

func newError(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func errSubjectNotFound(subject string) *Error {
	return newError(CodeSubjectNotFound, "Subject '%s' not found.", subject)
}

func errVersionNotFound(subject string, version int) *Error {
	return newError(CodeVersionNotFound, "Version %d not found for subject '%s'.", version, subject)
}

func errSchemaNotFound(format string, args ...any) *Error {
	if format == "" {
		return newError(CodeSchemaNotFound, "Schema not found")
	}
	return newError(CodeSchemaNotFound, format, args...)
}

func errInvalidSchema(err error) *Error {
	return &Error{Code: CodeInvalidSchema, Message: "Invalid schema: " + err.Error(), cause: err}
}

func errStore(err error) *Error {
	return &Error{Code: CodeStoreError, Message: "Error while storing the schema: " + err.Error(), cause: err}
}

// ErrorCode returns the registry error code of err: its *Error code, or
// 500 for anything else.
func ErrorCode(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return codeInternal
}
