package engine

import (
	"errors"
	"fmt"
)

var (
	// ErrConflict reports that a commit's read set changed after its
	// snapshot. The engine handles it by re-running the process; callers see
	// it only when retries are exhausted under WithRetry(0, ...) semantics or
	// the context ends while retrying.
	ErrConflict = errors.New("theus: conflict: an input changed since the snapshot")
	// ErrVersionMismatch is returned by CompareAndSwap when a commit after
	// the expected version is durable (see Engine.CompareAndSwap).
	ErrVersionMismatch = errors.New("theus: version mismatch")
	// ErrRuleViolation is matched by a *RuleError: an output broke a
	// contract rule with on_fail: reject; nothing was committed.
	ErrRuleViolation = errors.New("theus: rule violation")
	// ErrClosed is returned by calls on a closed engine.
	ErrClosed = errors.New("theus: engine closed")
	// ErrPanic is matched by a *PanicError: the process, or the store
	// while persisting the commit, panicked; nothing was committed and the
	// engine keeps serving. A store's panic comes as a *StoreError, which
	// matches ErrStore too.
	ErrPanic = errors.New("theus: process panicked")
	// ErrUndeclaredError is matched by the *ProcessError of a process that
	// returned a DomainError its contract does not declare (the error
	// matches the DomainError too).
	ErrUndeclaredError = errors.New("theus: undeclared domain error")
	// ErrStore is matched by errors of the store: the commit was not
	// persisted and is not visible.
	ErrStore = errors.New("theus: store failed")
)

// DomainError is a business error that a contract declares under `errors:`.
// Generated code declares one sentinel per name:
//
//	var ErrInvalidEmail = engine.DomainError("invalid_email")
type DomainError string

func (e DomainError) Error() string { return string(e) }

// PanicError is the error returned for a process that panicked, and the
// Err of the *StoreError of a group whose Store.Commit panicked (Process is
// then empty).
type PanicError struct {
	Process string
	Value   any
	Stack   []byte
}

func (e *PanicError) Error() string {
	if e.Process == "" {
		return fmt.Sprintf("panic: %v", e.Value)
	}
	return fmt.Sprintf("theus: process %s panicked: %v", e.Process, e.Value)
}

// Is reports that a PanicError matches ErrPanic.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// ProcessError wraps the error a process returned. errors.Is and errors.As
// see through it to the process's own error.
type ProcessError struct {
	Process string
	Err     error
	// Undeclared is set when Err holds a DomainError that the process's
	// contract does not declare; the error then matches ErrUndeclaredError
	// too.
	Undeclared bool
}

func (e *ProcessError) Error() string {
	if e.Undeclared {
		return "theus: process " + e.Process + " returned a domain error its contract does not declare: " + e.Err.Error()
	}
	return "theus: process " + e.Process + ": " + e.Err.Error()
}
func (e *ProcessError) Unwrap() error        { return e.Err }
func (e *ProcessError) Is(target error) bool { return e.Undeclared && target == ErrUndeclaredError }

// StoreError wraps the error of a store that failed to persist a commit:
// what Store.Commit returned, or a *PanicError if it panicked.
type StoreError struct {
	Version uint64 // the first version of the group that failed
	Err     error
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("theus: store failed to persist version %d: %v", e.Version, e.Err)
}
func (e *StoreError) Unwrap() error        { return e.Err }
func (e *StoreError) Is(target error) bool { return target == ErrStore }
