package console

import (
	"html/template"
	"strings"
	"time"

	"github.com/theus-go/theus/runtime/engine"
)

var funcs = template.FuncMap{
	"age": func(now, t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return now.Sub(t).Round(time.Millisecond).String()
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000Z")
	},
	"until":  func(now, t time.Time) string { return t.Sub(now).Round(time.Millisecond).String() },
	"write":  WriteString,
	"pretty": Pretty,
	"writes": func(ws []engine.Write) string {
		s := make([]string, len(ws))
		for i, w := range ws {
			s[i] = WriteString(w)
		}
		return strings.Join(s, ", ")
	},
	"str": func(b []byte) string { return string(b) },
}

const layout = `{{define "layout"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}} · Theus console</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}
header{background:#1f2d3d;color:#fff;padding:.6em 1em}header a{color:#cfe3ff;margin-right:1.2em;text-decoration:none}
header a.on{color:#fff;font-weight:bold}main{padding:1em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#eef}pre{margin:0;white-space:pre-wrap;max-width:60em}
.flash{background:#e6ffe6;border:1px solid #9c9;padding:.5em}.err{background:#ffe6e6;border:1px solid #c99;padding:.5em}
.btn{display:inline-block;padding:.2em .8em;border:1px solid #557;border-radius:3px;background:#f4f4ff;color:#223;text-decoration:none}
.danger{background:#fff0f0;border-color:#a55}.muted{color:#777}
</style></head><body>
<header><strong>Theus</strong> &nbsp;
<a href="{{.Base}}/" {{if eq .Nav "overview"}}class="on"{{end}}>Overview</a>
<a href="{{.Base}}/parked" {{if eq .Nav "parked"}}class="on"{{end}}>Parked</a>
<a href="{{.Base}}/history" {{if eq .Nav "history"}}class="on"{{end}}>History</a>
<a href="{{.Base}}/tail" {{if eq .Nav "tail"}}class="on"{{end}}>Live tail</a>
{{if .ReadOnly}}<span class="muted">read-only</span>{{end}}</header>
<main><h1>{{.Title}}</h1>
{{with .Flash}}<p class="flash" id="flash">{{.}}</p>{{end}}
{{template "body" .}}</main></body></html>{{end}}`

var pageText = map[string]string{
	"error": `{{define "body"}}<p class="err" id="error">{{.Data}}</p>{{end}}`,

	"overview": `{{define "body"}}{{$now := .Now}}{{with .Data}}
{{if .HasHead}}<p>Head version: <a href="{{$.Base}}/commits/{{.Head}}">{{.Head}}</a></p>{{end}}
{{with .Stats}}<table id="stats"><tr><th>Pending messages</th><td>{{.Pending}}</td></tr>
<tr><th>Oldest undelivered</th><td>{{ts .OldestPending}} ({{age $now .OldestPending}} ago)</td></tr>
<tr><th>Parked messages</th><td>{{.Parked}}</td></tr>
<tr><th>Parked keys</th><td><a href="{{$.Base}}/parked">{{.ParkedKeys}}</a></td></tr></table>{{end}}
{{with .Relay}}<table id="relay"><tr><th>Delivered by this process's relay</th><td>{{.Delivered}}</td></tr>
<tr><th>Delivery rate</th><td id="rate">{{if .HasRate}}{{printf "%.1f" .PerSecond}} messages/s{{else}}shown from the next view, a second or more from now{{end}}</td></tr>
<tr><th>Failed deliveries</th><td>{{.Failures}}</td></tr>
<tr><th>Parked by it</th><td>{{.Parked}}</td></tr></table>{{end}}
<h2>Per topic</h2>
{{if .Topics}}<table id="topics"><tr><th>Topic</th><th>Pending</th><th>Oldest undelivered age</th><th>Parked</th><th>Parked keys</th></tr>
{{range .Topics}}<tr><td><a href="{{$.Base}}/history?topic={{.Topic}}">{{.Topic}}</a></td><td>{{.Pending}}</td><td>{{age $now .OldestPending}}</td><td>{{.Parked}}</td><td>{{.ParkedKeys}}</td></tr>
{{end}}</table>{{else}}<p>Nothing pending or parked.</p>{{end}}
{{if or .Relays .Free}}<h2>Relays</h2><table id="relays"><tr><th>Relay</th><th>Partitions leased</th><th>Lease expires in</th></tr>
{{range .Relays}}<tr><td>{{.Holder}}</td><td>{{len .Partitions}}: {{.Partitions}}</td><td>{{until $now .Expires}}</td></tr>{{end}}</table>
{{if .Free}}<p id="free-partitions">{{.Free}} partition(s) leased by no live relay: their messages wait for one.</p>{{end}}{{end}}
{{range .Unsupport}}<p class="muted">This store gives no {{.}}.</p>{{end}}
{{end}}{{end}}`,

	"parked": `{{define "body"}}{{if .Data}}<table id="parked"><tr><th>Topic</th><th>Key</th><th>Parked</th><th>Attempts</th><th>Last error</th><th>First message</th><th></th></tr>
{{range .Data}}<tr><td>{{.Topic}}</td><td>{{.Key}}</td><td>{{.Count}}</td><td>{{.First.Attempts}}</td><td><pre>{{.First.LastError}}</pre></td>
<td>{{.First.ID}} (seq {{.First.KeySeq}}, <a href="{{$.Base}}/commits/{{.First.Version}}">commit {{.First.Version}}</a>)<pre>{{pretty .First.Payload}}</pre></td>
<td>{{if not $.ReadOnly}}<a class="btn" id="replay-{{.First.ID}}" href="{{$.Base}}/replay?topic={{.Topic}}&amp;key={{.Key}}">Replay</a>
<a class="btn danger" id="skip-{{.First.ID}}" href="{{$.Base}}/skip?id={{.First.ID}}">Skip</a>{{end}}</td></tr>
{{end}}</table>{{else}}<p id="none">No parked keys.</p>{{end}}{{end}}`,

	"replay": `{{define "body"}}{{with .Data}}<p>Return the {{.Count}} parked message(s) of topic <b>{{.Topic}}</b> key <b>{{.Key}}</b> to delivery, attempts reset; the key's later messages follow in order.</p>
<p>First: {{.First.ID}}, {{.First.Attempts}} attempts, last error:</p><pre>{{.First.LastError}}</pre><pre>{{pretty .First.Payload}}</pre>
<form method="post" action="{{$.Base}}/replay"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<input type="hidden" name="topic" value="{{.Topic}}"><input type="hidden" name="key" value="{{.Key}}">
{{if $.Token}}<label>Action token <input type="password" name="token" autocomplete="off"></label>{{end}}
<button class="btn" id="confirm" type="submit">Replay</button> <a href="{{$.Base}}/parked">Cancel</a></form>{{end}}{{end}}`,

	"skip": `{{define "body"}}{{with .Data}}<p>Mark message <b>{{.First.ID}}</b> (topic {{.Topic}}, key {{.Key}}, seq {{.First.KeySeq}}) as delivered <b>without sending it</b>; the key's later messages flow. Consumers will see a gap in its KeySeq.</p>
<p>{{.First.Attempts}} attempts, last error:</p><pre>{{.First.LastError}}</pre><pre>{{pretty .First.Payload}}</pre>
<form method="post" action="{{$.Base}}/skip"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<input type="hidden" name="id" value="{{.First.ID}}">
{{if $.Token}}<label>Action token <input type="password" name="token" autocomplete="off"></label>{{end}}
<button class="btn danger" id="confirm" type="submit">Skip</button> <a href="{{$.Base}}/parked">Cancel</a></form>{{end}}{{end}}`,

	"history": `{{define "body"}}{{with .Data}}<form method="get" action="{{$.Base}}/history">
Process <input name="process" value="{{.Filter.Process}}" size="14"> Topic <input name="topic" value="{{.Filter.Topic}}" size="14">
Key <input name="key" value="{{.Filter.Key}}" size="10"> Versions <input name="from" value="{{if .Filter.From}}{{.Filter.From}}{{end}}" size="6">–<input name="to" value="{{if .Filter.To}}{{.Filter.To}}{{end}}" size="6">
<button type="submit">Filter</button></form>
{{template "rows" .Rows}}
{{with .Next}}<p><a id="older" href="{{$.Base}}/history?{{.}}">Older commits</a>{{if or $.Data.Filter.Process $.Data.Filter.Topic $.Data.Filter.Key}} <span class="muted">(searched down to version {{$.Data.Searched}})</span>{{end}}</p>{{end}}{{end}}{{end}}
{{define "rows"}}{{if .}}<table id="commits"><tr><th>Version</th><th>Process</th><th>Time</th><th>Paths written</th><th>Messages</th></tr>
{{range .}}<tr><td><a href="{{base}}/commits/{{.Version}}">{{.Version}}</a></td><td>{{or .Process "(CompareAndSwap)"}}</td><td>{{ts .Time}}</td><td>{{writes .Writes}}</td>
<td>{{range .Messages}}{{.Topic}} {{.Key}} <span class="muted">{{.State}}</span><br>{{else}}{{len .MessageIDs}}{{end}}</td></tr>
{{end}}</table>{{else}}<p id="none">No commits.</p>{{end}}{{end}}`,

	"commit": `{{define "body"}}{{with .Data}}<p>Process <b>{{or .Commit.Process "(CompareAndSwap)"}}</b> at {{ts .Commit.Time}}.
{{if gt .Commit.Version 1}}<a href="{{$.Base}}/commits/{{.Commit.Version | prev}}">previous</a>{{end}} <a href="{{$.Base}}/commits/{{.Commit.Version | next}}">next</a></p>
<h2>Values written</h2>{{if .Values}}<table id="values"><tr><th>Path</th><th>Key</th><th>Value (as stored)</th></tr>
{{range .Values}}<tr><td>{{.Path}}</td><td>{{.Key}}</td><td>{{if .Deleted}}<i>deleted</i>{{else}}<pre>{{.Text}}</pre>{{end}}</td></tr>{{end}}</table>
{{else}}<p>Writes: {{writes .Commit.Writes}} (the store keeps no values for this commit)</p>{{end}}
<h2>Messages</h2>{{if .Messages}}<table id="messages"><tr><th>ID</th><th>Topic</th><th>Key</th><th>Seq</th><th>State</th><th>Attempts</th><th>Last error</th><th>Delivered</th><th>Payload</th></tr>
{{range .Messages}}<tr><td>{{.ID}}</td><td>{{.Topic}}</td><td>{{.Key}}</td><td>{{.KeySeq}}</td><td class="state">{{.State}}</td><td>{{.Attempts}}</td><td>{{.LastError}}</td><td>{{ts .DeliveredAt}}</td><td><pre>{{pretty .Payload}}</pre></td></tr>{{end}}</table>
{{else if not .Missing}}<p>None.</p>{{end}}
{{range .Missing}}<p class="muted">Message {{.}}: no longer held (pruned after delivery).</p>{{end}}{{end}}{{end}}`,

	"tail": `{{define "body"}}{{with .Data}}<p>New commits appear at the top as they are made{{/* */}}<noscript> (reload the page: live updates need JavaScript)</noscript>. <span id="status" class="muted"></span></p>
{{template "rows" .Rows}}
<script>
(function(){
var from = {{.From}}, base = {{$.Base}};
var table = document.getElementById("commits");
if (!table) { var none = document.getElementById("none"); table = document.createElement("table"); table.id = "commits";
  table.innerHTML = "<tr><th>Version</th><th>Process</th><th>Time</th><th>Paths written</th><th>Messages</th></tr>";
  none.replaceWith(table); }
var status = document.getElementById("status");
var es = new EventSource(base + "/tail/events?from=" + from);
es.onopen = function(){ status.textContent = "live"; };
es.addEventListener("commit", function(e){
  var c = JSON.parse(e.data), tr = document.createElement("tr");
  var a = document.createElement("a"); a.href = base + "/commits/" + c.version; a.textContent = c.version;
  var cells = [a, c.process || "(CompareAndSwap)", c.time, (c.writes || []).join(", "), (c.message_ids || []).length];
  cells.forEach(function(v){ var td = document.createElement("td"); if (v instanceof Node) td.appendChild(v); else td.textContent = v; tr.appendChild(td); });
  table.rows[0].after(tr);
});
es.addEventListener("error", function(e){ status.textContent = e.data ? JSON.parse(e.data) : "reconnecting"; });
})();
</script>{{end}}{{end}}`,
}

var pages = map[string]*template.Template{}

func init() {
	for name, text := range pageText {
		if name == "history" || name == "tail" {
			continue
		}
		pages[name] = template.Must(template.Must(template.New(name).Funcs(funcs).Funcs(pageFuncs).Parse(layout)).Parse(text))
	}
	rows := pageText["history"]
	pages["history"] = template.Must(template.Must(template.New("history").Funcs(funcs).Funcs(pageFuncs).Parse(layout)).Parse(rows))
	tail := template.Must(template.Must(template.New("tail").Funcs(funcs).Funcs(pageFuncs).Parse(layout)).Parse(rows))
	pages["tail"] = template.Must(tail.Parse(pageText["tail"]))
}

var pageFuncs = template.FuncMap{
	"prev": func(v uint64) uint64 { return v - 1 },
	"next": func(v uint64) uint64 { return v + 1 },
	"base": func() string { return "" },
}
