package router

import (
	"errors"
	"fmt"
)

// FieldError reports a problem with one field of a configuration block
// (a source's, a target's, a rule's input). Field is the YAML path relative
// to the block, keys joined by dots and list positions as [i], for example
// "network.subnets" or "container_overrides[1].name"; the config loader
// turns it into a file position. Validate methods return a FieldError, or
// several joined with errors.Join.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Fieldf returns a *FieldError for field with a formatted message.
func Fieldf(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// FieldErrors flattens err (possibly joined) into its field errors. Errors
// that are not field errors are returned with an empty Field.
func FieldErrors(err error) []*FieldError {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*FieldError
		for _, e := range j.Unwrap() {
			out = append(out, FieldErrors(e)...)
		}
		return out
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return []*FieldError{fe}
	}
	return []*FieldError{{Msg: err.Error()}}
}
