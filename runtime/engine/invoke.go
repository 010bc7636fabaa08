package engine

import "context"

// Invoke runs process proc of e with args and returns its receipt: the body
// of a generated Engine method. impl is a pointer to the application's
// Processes (see Take). It is generic over the arguments' type, so the
// compiler makes one per process: at 1,000 processes that is about 40 MB
// more compiler memory, against 5-10% less compile time and two lines
// fewer per generated method than Take, an assertion and Exec written out
// (docs/BENCHMARKS.md, "Generated code").
func Invoke[A, S any](ctx context.Context, e *Engine[S], proc int, impl any, args A) (Receipt, error) {
	c := Take(e, proc, impl)
	*c.Args().(*A) = args
	return c.Exec(ctx)
}

// InvokeResult is Invoke for a process that declares a result of type R.
func InvokeResult[R, A, S any](ctx context.Context, e *Engine[S], proc int, impl any, args A) (ReceiptOf[R], error) {
	c := Take(e, proc, impl)
	*c.Args().(*A) = args
	return ExecResult[R](ctx, c)
}
