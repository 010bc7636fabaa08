// Package nested is the generated engine of the SQLite store's test of
// writes below a state field; its processes set what their arguments say.
package nested

//go:generate go run github.com/theus-go/theus/cmd/theusgen generate -f contracts.yaml

import (
	"context"
	"maps"
)

// App implements Processes.
type App struct{}

func (App) ChangeEmail(_ context.Context, in ChangeEmailIn, out *ChangeEmailOut) error {
	out.SetUserEmail(in.Args.Email)
	out.EmitUserChanged(Changed{ID: in.UserID(), What: "email"})
	return nil
}

func (App) Move(_ context.Context, in MoveIn, out *MoveOut) error {
	out.SetUserAddress(Address{City: in.Args.City, Lines: in.Args.Lines})
	out.SetAudit(append(in.Audit().Clone(), "moved to "+in.Args.City))
	return nil
}

func (App) SetPrefs(_ context.Context, in SetPrefsIn, out *SetPrefsOut) error {
	out.SetUserPrefs(maps.Clone(in.Args.Prefs))
	return nil
}
