// <comms-inbox>: a recipient's in-app inbox for a tenant's pages (docs/inbox.md#embedding-the-inbox).
// A bell with the unread count; a list, newest first, to read a message (and follow its link)
// or all of them; live updates through the inbox's event stream. No dependencies.
//
//   <script src="https://comms.example/v1/inbox/embed.js" defer></script>
//   <comms-inbox api="https://comms.example" token="…"></comms-inbox>
//
// When the token runs out the element fires "comms-inbox-expired"; set a new token attribute and
// it reconnects.
(() => {
  if (customElements.get("comms-inbox")) return;

  const style = `
    :host { position: relative; display: inline-block; font: 14px/1.4 system-ui, sans-serif; color: #1f2328; }
    button { font: inherit; cursor: pointer; }
    #bell { position: relative; background: none; border: 0; padding: 4px; }
    #bell svg { width: 24px; height: 24px; fill: currentColor; }
    #badge { position: absolute; top: 0; right: 0; min-width: 16px; padding: 0 4px; border-radius: 8px;
             background: #cf222e; color: #fff; font-size: 11px; line-height: 16px; text-align: center; }
    #badge[hidden] { display: none; }
    #panel { position: absolute; right: 0; z-index: 1000; width: 320px; max-height: 420px; overflow: auto;
             background: #fff; border: 1px solid #d0d7de; border-radius: 8px; box-shadow: 0 8px 24px rgba(0,0,0,.12); }
    #panel[hidden] { display: none; }
    header { display: flex; justify-content: space-between; align-items: center; padding: 8px 12px; border-bottom: 1px solid #d0d7de; }
    header button { background: none; border: 0; color: #0969da; padding: 0; }
    ul { list-style: none; margin: 0; padding: 0; }
    li { padding: 8px 12px; border-bottom: 1px solid #eaeef2; cursor: pointer; }
    li.unread { background: #f6f8fa; }
    li.unread .title { font-weight: 600; }
    .body { color: #57606a; }
    .when { color: #8c959f; font-size: 12px; }
    .empty { padding: 16px 12px; color: #57606a; }`;

  class CommsInbox extends HTMLElement {
    static get observedAttributes() { return ["token", "api"]; }

    constructor() {
      super();
      this.items = [];
      this.unread = 0;
      const root = this.attachShadow({ mode: "open" });
      root.innerHTML = `<style>${style}</style>
        <button id="bell" part="bell" aria-label="Notifications" aria-expanded="false">
          <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1z"/></svg>
          <span id="badge" part="badge" hidden>0</span>
        </button>
        <div id="panel" part="panel" hidden role="dialog" aria-label="Notifications">
          <header><strong>Notifications</strong><button id="read-all" type="button">Mark all as read</button></header>
          <ul id="list"></ul>
        </div>`;
      root.getElementById("bell").addEventListener("click", () => this.toggle());
      root.getElementById("read-all").addEventListener("click", () => this.readAll());
    }

    connectedCallback() { this.start(); }
    disconnectedCallback() { this.stop(); }
    attributeChangedCallback(_name, old, value) { if (old !== value && this.isConnected) this.start(); }

    get base() { return (this.getAttribute("api") || "").replace(/\/$/, ""); }
    get token() { return this.getAttribute("token") || ""; }

    call(method, path) {
      return fetch(this.base + path, { method, headers: { Authorization: "Bearer " + this.token } }).then((r) => {
        if (!r.ok) throw new Error(`${method} ${path}: ${r.status}`);
        return r.json();
      });
    }

    start() {
      this.stop();
      if (!this.token || !this.base) return;
      this.load();
      const es = new EventSource(`${this.base}/v1/inbox/stream?token=${encodeURIComponent(this.token)}`);
      es.addEventListener("ready", (e) => this.setUnread(JSON.parse(e.data).unread_count));
      es.addEventListener("message", (e) => {
        const item = JSON.parse(e.data);
        if (this.items.some((i) => i.id === item.id)) return;
        this.items.unshift(item);
        this.setUnread(this.unread + 1);
        this.render();
      });
      es.addEventListener("resync", () => this.load());
      es.addEventListener("expired", () => {
        this.stop();
        this.dispatchEvent(new CustomEvent("comms-inbox-expired", { bubbles: true, composed: true }));
      });
      this.stream = es;
    }

    stop() {
      if (this.stream) this.stream.close();
      this.stream = null;
    }

    load() {
      return this.call("GET", "/v1/inbox?limit=20").then((page) => {
        this.items = page.data;
        this.setUnread(page.unread_count);
        this.render();
      }, (err) => console.warn("comms-inbox:", err.message));
    }

    setUnread(n) {
      this.unread = Math.max(0, n);
      const badge = this.shadowRoot.getElementById("badge");
      badge.textContent = this.unread > 99 ? "99+" : String(this.unread);
      badge.hidden = this.unread === 0;
    }

    toggle() {
      const panel = this.shadowRoot.getElementById("panel");
      panel.hidden = !panel.hidden;
      this.shadowRoot.getElementById("bell").setAttribute("aria-expanded", String(!panel.hidden));
    }

    open(item) {
      const follow = () => { if (item.action_url) window.location.assign(item.action_url); };
      if (item.read_at) return follow();
      this.call("POST", `/v1/inbox/${encodeURIComponent(item.id)}/read`).then((read) => {
        Object.assign(item, read);
        this.setUnread(this.unread - 1);
        this.render();
        follow();
      }, (err) => console.warn("comms-inbox:", err.message));
    }

    readAll() {
      this.call("POST", "/v1/inbox/read-all").then(() => {
        const now = new Date().toISOString();
        this.items.forEach((i) => { i.read_at = i.read_at || now; });
        this.setUnread(0);
        this.render();
      }, (err) => console.warn("comms-inbox:", err.message));
    }

    render() {
      const list = this.shadowRoot.getElementById("list");
      list.replaceChildren();
      if (this.items.length === 0) {
        const empty = document.createElement("li");
        empty.className = "empty";
        empty.textContent = "Nothing here yet.";
        list.append(empty);
        return;
      }
      for (const item of this.items) {
        const li = document.createElement("li");
        li.className = item.read_at ? "read" : "unread";
        li.dataset.id = item.id;
        for (const [cls, text] of [["title", item.title], ["body", item.body],
                                   ["when", new Date(item.sent_at || item.created_at).toLocaleString()]]) {
          if (!text) continue;
          const div = document.createElement("div");
          div.className = cls;
          div.textContent = text; // text, never markup: a message cannot inject into the page
          li.append(div);
        }
        li.addEventListener("click", () => this.open(item));
        list.append(li);
      }
    }
  }

  customElements.define("comms-inbox", CommsInbox);
})();
