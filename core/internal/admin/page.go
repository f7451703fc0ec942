package admin

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// The web page's files, embedded: nothing is loaded from elsewhere.
//
//go:embed ui
var uiFiles embed.FS

var uiFS, _ = fs.Sub(uiFiles, "ui")

// page serves the web page: "/" is ui/index.html, "/ui/NAME" the other
// files. It holds no data: the page asks for the admin token (when one is
// set) and sends it as a header on its own requests to /v1/.
func page(w http.ResponseWriter, r *http.Request, path string) {
	if !allowMethods(w, r, "GET, HEAD", http.MethodGet, http.MethodHead) {
		return
	}
	name := strings.TrimPrefix(path, "/ui/")
	if path == "/" {
		name = "index.html"
	}
	if _, err := fs.Stat(uiFS, name); err != nil || strings.Contains(name, "..") {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, uiFS, name)
}
