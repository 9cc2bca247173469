// Package envelope writes JSON responses in the platform's public-API
// envelope, shared by the middleware and the REST handler:
//
//	{"status":{"code":200,"message":"Success"},"data":...}
//	{"status":{"code":400,"message":"Bad Request"},"error":"...","errors":["..."]}
package envelope

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
)

// Status is the envelope's status object.
type Status struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// StatusOf returns the status object for an HTTP status code.
func StatusOf(code int) Status {
	msg := http.StatusText(code)
	if code >= 200 && code < 300 {
		msg = "Success"
	}
	return Status{Code: code, Message: msg}
}

// Error is an error response. Extra members (such as "restriction") are
// added with Fields.
type Error struct {
	Status Status
	Error  string
	Errors []string
	Fields map[string]string
}

// MarshalJSON writes status, error, errors (always an array) and then the
// extra fields in sorted order, so that equal errors are equal bytes.
func (e Error) MarshalJSON() ([]byte, error) {
	errs := e.Errors
	if errs == nil {
		errs = []string{}
	}
	fixed, err := json.Marshal(struct {
		Status Status   `json:"status"`
		Error  string   `json:"error"`
		Errors []string `json:"errors"`
	}{e.Status, e.Error, errs})
	if err != nil || len(e.Fields) == 0 {
		return fixed, err
	}
	buf := bytes.NewBuffer(fixed[:len(fixed)-1])
	for _, k := range slices.Sorted(maps.Keys(e.Fields)) {
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(e.Fields[k])
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// WriteJSON writes v as the body with the status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		body, _ = json.Marshal(Error{Status: StatusOf(code), Error: "internal error"})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// WriteError writes an error response.
func WriteError(w http.ResponseWriter, code int, msg string, errs []string, fields map[string]string) {
	WriteJSON(w, code, Error{Status: StatusOf(code), Error: msg, Errors: errs, Fields: fields})
}

// Success is a success response; Pagination is set for listings only, and
// Warning when the request succeeded with something the client must know.
type Success struct {
	Status     Status `json:"status"`
	Data       any    `json:"data"`
	Pagination any    `json:"pagination,omitempty"`
	Warning    string `json:"warning,omitempty"`
}

// WriteData writes a success response.
func WriteData(w http.ResponseWriter, code int, data, pagination any) {
	WriteJSON(w, code, Success{Status: StatusOf(code), Data: data, Pagination: pagination})
}

// WriteWarning writes a success response that carries a warning.
func WriteWarning(w http.ResponseWriter, code int, data any, warning string) {
	WriteJSON(w, code, Success{Status: StatusOf(code), Data: data, Warning: warning})
}
