package main

import (
	"context"
	"fmt"
	"strings"
)

// app implements the generated Processes interface. It is the quickstart's
// code, word for word: a contract in struct tags generates the same API as
// the same contract in YAML. Its methods only read
// their inputs and write their outputs: no I/O, no clock, no globals, so the
// engine may run them again after a conflict.
type app struct{}

func (app) UpdateUserEmail(_ context.Context, in UpdateUserEmailIn, out *UpdateUserEmailOut) error {
	email := strings.TrimSpace(in.Args.Email)
	if limit := in.MaxEmailLen(); limit > 0 && len(email) > limit {
		return fmt.Errorf("email is %d bytes, the limit is %d", len(email), limit)
	}
	if !strings.Contains(email, "@") {
		return fmt.Errorf("%q is not an email address", email)
	}
	u := in.User().Clone()
	out.SetResult(u.Email)
	u.Email = email
	out.SetUser(u)
	out.EmitUserUpdated(UserUpdated{ID: u.ID, Email: u.Email})
	return nil
}

func (app) RecordLogin(_ context.Context, in RecordLoginIn, out *RecordLoginOut) error {
	out.SetLogins(in.Logins() + 1)
	return nil
}

func (app) CurrentEmail(_ context.Context, in CurrentEmailIn, out *CurrentEmailOut) error {
	out.SetResult(in.User().Email())
	return nil
}
