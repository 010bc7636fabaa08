// Package helpers is a package of the module that processes call: the
// analyzers summarize it into facts and report the calls into it.
package helpers

import (
	"fmt"
	"os"
	"strings"
	"time"

	"example.com/lintcases/shop"
)

// Env reads the environment, two calls down.
func Env(key string) string { return lookup(key) } // want Env:`os.Getenv reads or changes the environment at example.com/lintcases/helpers/helpers.go:\d+:\d+ via helpers.lookup`

func lookup(key string) string { return os.Getenv(key) }

// Stamp reads the clock.
func Stamp() string { return time.Now().Format(time.RFC3339) }

// Normalize is pure.
func Normalize(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Describe is pure.
func Describe(u shop.User) string { return fmt.Sprintf("%s <%s>", u.ID, u.Email) }

// Hits is a package variable that Count writes.
var Hits int

// Count writes a package variable.
func Count() { Hits++ }

// Background starts a goroutine.
func Background(f func()) { go f() }

var last shop.UserView

// Remember keeps a view in a package variable.
func Remember(v shop.UserView) { last = v }

// Box holds a view.
type Box struct{ V shop.UserView }

// Put stores its argument into the box: the box holds it afterwards.
func (b *Box) Put(v shop.UserView) { b.V = v }
