package callback

import "net/http"

var bodyNotFound = []byte(`{"error":"not_found"}`)

// OnlyPath serves h at exactly path (the request's decoded path) and
// answers any other path 404 with {"error":"not_found"}. Unlike
// http.ServeMux it never redirects: a ServeMux answers //notify_cb,
// /./notify_cb or /notify_cb/../notify_cb with a 307 to the clean path
// before h, and so its source and token checks, sees the request.
func OnlyPath(path string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			h.ServeHTTP(w, r)
			return
		}
		w.Header()["Content-Type"] = headerJSON
		w.WriteHeader(http.StatusNotFound)
		if r.Method != http.MethodHead {
			_, _ = w.Write(bodyNotFound)
		}
	})
}
