package api

import (
	"bytes"
	"compress/gzip"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/logicspike/comms/docs"
)

// referenceCSP lets the reference run only its own scripts; Redoc styles its components inline
// and runs its search in a worker it builds from a blob.
const referenceCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type asset struct {
	body, gzipped []byte
	contentType   string
}

var (
	assetsOnce sync.Once
	assets     map[string]asset
)

// loadAssets reads the embedded reference once, compressing each file once for clients that
// accept gzip (the bundle is 1.1 MB, 0.3 MB compressed).
func loadAssets() map[string]asset {
	assetsOnce.Do(func() {
		assets = map[string]asset{}
		_ = fs.WalkDir(docs.Reference, "reference", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			body, _ := fs.ReadFile(docs.Reference, p)
			var z bytes.Buffer
			gw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
			_, _ = gw.Write(body)
			_ = gw.Close()
			ct := "text/javascript; charset=utf-8"
			if strings.HasSuffix(p, ".html") {
				ct = "text/html; charset=utf-8"
			}
			assets[path.Base(p)] = asset{body: body, gzipped: z.Bytes(), contentType: ct}
			return nil
		})
	})
	return assets
}

// reference serves the browsable API reference (/docs) and its scripts (/docs/{file}).
func (s *Server) reference(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "" {
		name = "index.html"
	}
	a, ok := loadAssets()[name]
	if !ok {
		writeProblem(w, r, errNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Content-Security-Policy", referenceCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "public, max-age=300")
	h.Add("Vary", "Accept-Encoding")
	body := a.body
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		body = a.gzipped
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}
