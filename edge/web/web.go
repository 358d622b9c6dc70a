// Package web holds the files the edge serves to browsers, embedded in the
// binary: the JavaScript client (herald.js, with its types in herald.d.ts)
// and the console (index.html, console.js, console.css), which is built on
// that client. They are static files with no build step; package edge
// serves them (edge/web.go).
package web

import "embed"

// Files are the embedded files, by name. An embed.FS is read-only.
//
//go:embed herald.js herald.d.ts index.html console.js console.css
var Files embed.FS
