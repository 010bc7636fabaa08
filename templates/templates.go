package templates

import "embed"

// FS holds the templates, under init/ and doc/.
//
//go:embed init/*.tmpl doc/*.tmpl
var FS embed.FS

// Suffix ends the name of every template file.
const Suffix = ".tmpl"
