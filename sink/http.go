package sink

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/stage"
)

// HTTP POSTs each batch to a URL as one request.
var HTTP = Destination{
	Flag:          "post",
	Usage:         "POST each batch to `URL` as one request in --format (default json: JSON lines), its id and time in X-Dstream-Batch-Id and X-Dstream-Batch-Time; an answer but 2xx is an error",
	Category:      "Files and commands",
	Encodes:       true,
	DefaultFormat: "json",
	Open:          openHTTP,
}

func openHTTP(o *Options, f *codec.Format, _ *bufio.Writer) (Writer, error) {
	url := o.Target
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, stage.UsageError("--post %q: want an http:// or https:// URL", url)
	}
	client := &http.Client{Timeout: postTimeout}
	return newPerBatch(o, f, func(b stage.Batch) (target, error) {
		return &postTarget{client: client, url: url, ctype: f.ContentType, b: b}, nil
	}), nil
}

// postTimeout bounds one POST of a batch, the answer included.
const postTimeout = 30 * time.Second

// postTarget POSTs a batch to a URL as one request body, with the batch's
// id and time in the headers X-Dstream-Batch-Id and X-Dstream-Batch-Time
// (a receiver can make the write idempotent by them). Any answer but 2xx
// is an error naming the batch; the body is gathered first, so that the
// request has a length and the batch goes whole or not at all.
type postTarget struct {
	client *http.Client
	url    string
	ctype  string
	b      stage.Batch
	body   bytes.Buffer
}

func (t *postTarget) Write(p []byte) (int, error) { return t.body.Write(p) }

func (t *postTarget) commit() error {
	req, err := http.NewRequest(http.MethodPost, t.url, bytes.NewReader(t.body.Bytes()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", t.ctype)
	req.Header.Set("X-Dstream-Batch-Id", strconv.FormatUint(t.b.ID, 10))
	req.Header.Set("X-Dstream-Batch-Time", strconv.FormatInt(t.b.Time, 10))
	resp, err := t.client.Do(req)
	if err != nil {
		return stage.Hint(fmt.Errorf("--post: %w", err), "check that the server at %s is up and the URL right", t.url)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("--post %s: %s: %s", t.url, resp.Status, strings.TrimSpace(string(msg)))
	}
	io.Copy(io.Discard, resp.Body) // so that the connection is kept
	return nil
}

func (t *postTarget) abort() {}
