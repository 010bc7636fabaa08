// Package templates holds the text templates of theusgen's outputs that are
// not generated Go code: the project scaffold written by `theusgen init` and
// the Markdown written by `theusgen doc`. They are plain files, embedded, so
// that changing the scaffold or the document means editing a file that
// looks like the result.
//
// The files are executed with text/template by internal/cli, which owns the
// data each one is given:
//
//   - init/*.tmpl: one file of the scaffold each, named after the file it
//     becomes plus ".tmpl" (so that the go command does not read the Go
//     ones as source). Data: the package name, as {{.Package}}.
//   - doc/contract.md.tmpl: the Markdown of one contract.
package templates
