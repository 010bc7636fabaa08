package celcheck

import (
	"fmt"
	"reflect"
	"sync"

	"github.com/theus-go/theus/runtime/engine"
)

// Check is the CEL check of a process rule, as generated code declares it:
// compiled on first use, against the types of the values it is given, and
// shared by the runs of the process.
type Check struct {
	expr string
	args []string
	once sync.Once
	prg  *Program
	err  error
}

// NewCheck returns the check expr, for a process whose arguments (the
// fields of its Args struct, in order) have the contract names args.
func NewCheck(expr string, args ...string) *Check { return &Check{expr: expr, args: args} }

// Holds reports whether the check holds for the value self points to and
// the arguments args points to. A check that cannot be compiled or
// evaluated (a division by zero, the cost limit) makes the call fail with
// the error (tx.Fail), and Holds reports true: there is no broken rule to
// report beside it.
func (c *Check) Holds(tx *engine.Tx, self, args any) bool {
	c.once.Do(func() { c.prg, c.err = c.compile(self, args) })
	if c.err != nil {
		tx.Fail(c.err)
		return true
	}
	ok, err := c.prg.Eval(self, args)
	if err != nil {
		tx.Fail(fmt.Errorf("theus: %w", err))
		return true
	}
	return ok
}

func (c *Check) compile(self, args any) (*Program, error) {
	st, err := TypeOf(reflect.TypeOf(self).Elem())
	if err != nil {
		return nil, fmt.Errorf("theus: check %s: %w", c.expr, err)
	}
	at, err := TypeOf(reflect.TypeOf(args).Elem())
	if err != nil {
		return nil, fmt.Errorf("theus: check %s: %w", c.expr, err)
	}
	if len(at.Fields) != len(c.args) {
		return nil, fmt.Errorf("theus: check %s: %d arguments named for %s, which has %d fields", c.expr, len(c.args), at.Name, len(at.Fields))
	}
	for i, name := range c.args {
		at.Fields[i].Name = name
	}
	p, err := Compile(c.expr, st, at)
	if err != nil {
		return nil, fmt.Errorf("theus: %w", err)
	}
	return p, nil
}
