package dash

import (
	"embed"
	"encoding/json"
	"net/http"
)

//go:embed web
var web embed.FS

// Handler serves the web view: the page (/), modelled on Spark's Streaming
// tab, and the snapshot it polls (/api/snapshot, JSON: the rows and each
// stage's last History batches), which a script may read as well.
func (d *Dash) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/snapshot", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(d.Snapshot(true))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := web.ReadFile("web/index.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(b)
	})
	return mux
}
