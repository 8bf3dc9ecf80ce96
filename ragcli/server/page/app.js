// The page `ragcli serve` shows at /: ask (streamed answer, then its sources) or search a
// collection. Plain script, no build step, nothing loaded from elsewhere. Every piece of text
// from the server goes in through textContent or a text node, never as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "ragcli-token";
  const WITHHELD = {
    "weak retrieval": "no passage of the collection is close to the question",
    "model declined": "the model said the passages do not answer it",
    unsupported: "no sentence of it is supported by the passages it cites",
    "not verified": "the model could not confirm it from the passages",
    "low confidence": "it is likely wrong: the evidence and the model's check are too weak",
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    form: $("ask-form"),
    question: $("question"),
    ask: $("ask"),
    collection: $("collection"),
    searchOnly: $("search-only"),
    k: $("k"),
    mode: $("mode"),
    path: $("path"),
    type: $("type"),
    tag: $("tag"),
    after: $("after"),
    before: $("before"),
    status: $("status"),
    error: $("error"),
    errorMessage: $("error-message"),
    errorHint: $("error-hint"),
    answerSection: $("answer-section"),
    answer: $("answer"),
    withheld: $("withheld"),
    withheldMessage: $("withheld-message"),
    withheldReason: $("withheld-reason"),
    withheldTextBox: $("withheld-text-box"),
    withheldText: $("withheld-text"),
    notes: $("notes"),
    sourcesSection: $("sources-section"),
    sourcesTitle: $("sources-title"),
    sources: $("sources"),
  };

  class ApiError extends Error {
    constructor(status, code, message, hint) {
      super(message);
      this.name = "ApiError";
      this.status = status;
      this.code = code;
      this.hint = hint || "";
    }
  }

  // -- the token: from #token=..., kept for this tab only, never left in the address bar --------

  function storage(action) {
    try {
      return action(window.sessionStorage);
    } catch (e) {
      return null; // storage refused (private mode, a file: page): the token lives in memory
    }
  }

  function takeToken() {
    const fragment = window.location.hash.replace(/^#/, "");
    const params = new URLSearchParams(fragment);
    if (params.has("token")) {
      const given = params.get("token") || "";
      storage((s) => (given ? s.setItem(TOKEN_KEY, given) : s.removeItem(TOKEN_KEY)));
      params.delete("token");
      const rest = params.toString();
      const address = window.location.pathname + window.location.search + (rest ? "#" + rest : "");
      window.history.replaceState(null, "", address);
      return given;
    }
    return storage((s) => s.getItem(TOKEN_KEY)) || "";
  }

  let token = takeToken();

  // -- talking to the server ---------------------------------------------------------------------

  function unauthorized() {
    const sent = Boolean(token);
    token = "";
    storage((s) => s.removeItem(TOKEN_KEY));
    const address = window.location.origin + "/#token=YOUR_TOKEN";
    return new ApiError(
      401,
      "unauthorized",
      sent
        ? "The server refused the token this page sent (401 Unauthorized)."
        : "This server needs a token (401 Unauthorized).",
      `Open the page as ${address}, with the token given to \`ragcli serve --token\`.`,
    );
  }

  async function problem(response) {
    if (response.status === 401) return unauthorized();
    let error = null;
    try {
      error = (await response.json()).error;
    } catch (e) {
      error = null;
    }
    if (error && typeof error.message === "string") {
      return new ApiError(response.status, error.code || "error", error.message, error.hint);
    }
    const text = `The server answered ${response.status} ${response.statusText || ""}`.trim();
    return new ApiError(response.status, "http_" + response.status, text + ".", "");
  }

  async function call(method, path, body, signal) {
    const headers = { Accept: "application/json, text/event-stream" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = "Bearer " + token;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: "no-store",
        credentials: "omit",
      });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError(
        0,
        "unreachable",
        "Cannot reach the ragcli server.",
        "Is `ragcli serve` still running? Reload this page once it is.",
      );
    }
    if (!response.ok) throw await problem(response);
    return response;
  }

  async function getJson(path) {
    return (await call("GET", path)).json();
  }

  // Server-Sent Events from a fetch() body: blocks split by a blank line, "event:" and "data:".
  function parseEvent(block) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return null;
    try {
      return { name, data: JSON.parse(data.join("\n")) };
    } catch (e) {
      throw new ApiError(0, "bad_stream", "The server sent an event this page cannot read.", "");
    }
  }

  async function* events(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(0), { stream: !done });
      buffer = buffer.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = parseEvent(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        if (event) yield event;
      }
      if (done) break;
    }
    const last = parseEvent(buffer);
    if (last) yield last;
  }

  // -- rendering ---------------------------------------------------------------------------------

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function setStatus(text) {
    ui.status.textContent = text || "";
  }

  function showError(error) {
    ui.errorMessage.textContent = error.message || String(error);
    ui.errorHint.textContent = error.hint || "";
    ui.errorHint.hidden = !error.hint;
    ui.error.hidden = false;
  }

  function clearError() {
    ui.error.hidden = true;
    ui.errorMessage.textContent = "";
    ui.errorHint.textContent = "";
  }

  function clearResults() {
    ui.answerSection.hidden = true;
    ui.answer.replaceChildren();
    ui.answer.hidden = false;
    ui.answer.classList.remove("streaming");
    ui.answer.setAttribute("aria-busy", "false");
    ui.withheld.hidden = true;
    ui.withheldMessage.textContent = "";
    ui.withheldReason.textContent = "";
    ui.withheldTextBox.hidden = true;
    ui.withheldText.textContent = "";
    ui.notes.replaceChildren();
    ui.notes.hidden = true;
    ui.sourcesSection.hidden = true;
    ui.sources.replaceChildren();
  }

  function baseName(source) {
    const parts = String(source || "").split(/[\\/]/);
    return parts[parts.length - 1] || String(source || "");
  }

  function position(hit) {
    if (hit.page !== null && hit.page !== undefined) return `p. ${hit.page}`;
    if (Array.isArray(hit.lines) && hit.lines[0] !== null && hit.lines[0] !== undefined) {
      const [first, last] = hit.lines;
      return last === null || last === undefined || last === first
        ? `line ${first}`
        : `lines ${first}\u2013${last}`;
    }
    return "";
  }

  function sourceItem(number, hit) {
    const item = make("li", "source");
    item.id = "source-" + number;
    item.dataset.marker = String(number);
    const details = make("details");
    const summary = make("summary");
    summary.append(make("span", "marker", `[${number}]`));
    const file = make("span", "file", baseName(hit.source));
    file.title = hit.source || "";
    summary.append(file);
    const where = position(hit);
    if (where) summary.append(make("span", "where", where));
    if (hit.heading) summary.append(make("span", "heading", hit.heading));
    if (typeof hit.score === "number") {
      summary.append(make("span", "score", "score " + hit.score.toFixed(3)));
    }
    details.append(summary, make("p", "path", hit.source), make("div", "passage", hit.text));
    item.append(details);
    return item;
  }

  function showSources(title, numbered) {
    ui.sourcesTitle.textContent = title;
    ui.sources.replaceChildren(...numbered.map(([number, hit]) => sourceItem(number, hit)));
    ui.sourcesSection.hidden = numbered.length === 0;
  }

  // The answer's text, each [n] that names a source a link to it.
  function renderAnswer(text, markers) {
    ui.answer.replaceChildren();
    for (const part of String(text).split(/(\[\d+\])/)) {
      const marker = /^\[(\d+)\]$/.exec(part);
      if (marker && markers.has(Number(marker[1]))) {
        const link = make("a", "cite", part);
        link.href = "#source-" + marker[1];
        link.dataset.marker = marker[1];
        link.setAttribute("aria-label", "source " + marker[1]);
        ui.answer.append(link);
      } else if (part) {
        ui.answer.append(document.createTextNode(part));
      }
    }
  }

  function addNote(text) {
    ui.notes.append(make("li", "note", text));
    ui.notes.hidden = false;
  }

  function numberedPassages(passages) {
    return passages.map((hit, i) => [i + 1, hit]);
  }

  function finishAnswer(done) {
    const reason = done.abstain_reason || "";
    const passages = Array.isArray(done.passages) ? done.passages : [];
    const citations = Array.isArray(done.citations) ? done.citations : [];
    if (done.abstained) {
      ui.answer.replaceChildren();
      ui.answer.hidden = true;
      const why = WITHHELD[reason] || reason || "it could not be checked against the passages";
      ui.withheldMessage.textContent =
        reason === "weak retrieval"
          ? "No answer: the collection does not seem to contain it."
          : reason === "model declined"
            ? "No answer: the model found none in the passages."
            : "No answer: ragcli withheld the model's answer.";
      ui.withheldReason.textContent = `Why: ${why}` + (reason ? ` (${reason}).` : ".");
      ui.withheld.hidden = false;
      if (done.answer && reason !== "weak retrieval") {
        ui.withheldText.textContent = done.answer;
        ui.withheldTextBox.hidden = false;
      }
      showSources("Nearest passages", numberedPassages(passages));
      return;
    }
    const markers = new Set(citations.map((c) => Number(c.marker)));
    renderAnswer(done.answer || "", markers);
    if (citations.length) {
      showSources("Sources", citations.map((c) => [c.marker, c]));
    } else {
      showSources("Passages given to the model (none cited)", numberedPassages(passages));
    }
    const unknown = Array.isArray(done.unknown_markers) ? done.unknown_markers : [];
    if (unknown.length) {
      const list = unknown.map((n) => `[${n}]`).join(", ");
      addNote(`Removed citation markers that point to no passage: ${list}.`);
    }
    const sentences = Array.isArray(done.sentences) ? done.sentences : [];
    for (const sentence of sentences.filter((s) => s && s.supported === false)) {
      const backed = Array.isArray(sentence.backed_by) ? sentence.backed_by : [];
      const where = backed.map((n) => `[${n}]`).join(", ");
      addNote(
        backed.length
          ? `Cites the wrong passage; support is in ${where}: ${sentence.text}`
          : `Not supported by the passages it cites: ${sentence.text}`,
      );
    }
  }

  function seconds(since) {
    return ((performance.now() - since) / 1000).toFixed(1) + " s";
  }

  // -- asking and searching ----------------------------------------------------------------------

  async function search(query, signal, started) {
    setStatus("Searching\u2026");
    const result = await (await call("POST", "/search", query, signal)).json();
    const hits = Array.isArray(result.hits) ? result.hits : [];
    showSources("Passages", hits.map((hit, i) => [hit.rank || i + 1, hit]));
    const count = hits.length === 1 ? "1 passage" : `${hits.length} passages`;
    setStatus(hits.length ? `${count} found in ${seconds(started)}.` : "No passage found.");
  }

  async function ask(query, signal, started) {
    setStatus("Finding passages\u2026");
    ui.answerSection.hidden = false;
    ui.answer.classList.add("streaming");
    ui.answer.setAttribute("aria-busy", "true");
    const cited = [];
    let done = null;
    let written = false;
    try {
      const response = await call("POST", "/ask", { ...query, stream: true }, signal);
      for await (const event of events(response)) {
        const data = event.data || {};
        if (event.name === "token") {
          if (!written) setStatus("Writing the answer\u2026");
          written = true;
          ui.answer.append(document.createTextNode(String(data.text || "")));
        } else if (event.name === "citation") {
          cited.push([data.marker, data]);
          showSources("Sources", cited);
        } else if (event.name === "done") {
          done = data;
        } else if (event.name === "error") {
          const e = data.error || {};
          throw new ApiError(0, e.code || "error", e.message || "The answer failed.", e.hint);
        }
      }
    } finally {
      ui.answer.classList.remove("streaming");
      ui.answer.setAttribute("aria-busy", "false");
      if (!written) ui.answerSection.hidden = done === null; // refused or failed: no empty box
    }
    if (!done) {
      throw new ApiError(
        0,
        "incomplete",
        "The answer stopped before it was finished.",
        "The server may have stopped; ask again.",
      );
    }
    finishAnswer(done);
    const took = seconds(started);
    setStatus(done.abstained ? `Answer withheld (${took}).` : `Answered in ${took}.`);
  }

  function readQuery() {
    const question = ui.question.value.trim();
    if (!question) {
      throw new ApiError(0, "empty", "Type a question first.", "Then press Enter or the button.");
    }
    const query = { question };
    if (ui.collection.value) query.collection = ui.collection.value;
    const k = ui.k.value.trim();
    if (k) {
      const number = Number(k);
      if (!Number.isInteger(number) || number < 1 || number > 50) {
        throw new ApiError(0, "bad_k", "Passages (k) must be a whole number from 1 to 50.", "");
      }
      query.k = number;
    }
    if (ui.mode.value) query.mode = ui.mode.value;
    // the filters go as typed; the server checks them as the command line does
    for (const name of ["path", "type", "tag", "after", "before"]) {
      const value = ui[name].value.trim();
      if (value) query[name] = value;
    }
    return query;
  }

  let current = null; // the AbortController of the request in flight

  function buttonLabel() {
    if (current) return "Stop";
    return ui.searchOnly.checked ? "Search" : "Ask";
  }

  function setBusy(controller) {
    current = controller;
    ui.ask.textContent = buttonLabel();
    ui.ask.classList.toggle("stop", Boolean(current));
    document.body.setAttribute("aria-busy", current ? "true" : "false");
  }

  async function submit() {
    if (current) {
      current.abort();
      return;
    }
    clearError();
    let query;
    try {
      query = readQuery();
    } catch (error) {
      setStatus("");
      showError(error);
      ui.question.focus();
      return;
    }
    clearResults();
    const controller = new AbortController();
    setBusy(controller);
    const started = performance.now();
    try {
      if (ui.searchOnly.checked) await search(query, controller.signal, started);
      else await ask(query, controller.signal, started);
    } catch (error) {
      if (error.name === "AbortError") {
        setStatus("Stopped.");
      } else {
        setStatus("");
        showError(error);
      }
    } finally {
      setBusy(null);
    }
  }

  // -- start -------------------------------------------------------------------------------------

  function fillCollections(collections, preferred) {
    const options = collections.map((c) => {
      const option = make("option");
      option.value = c.name;
      const size = [];
      if (typeof c.documents === "number") size.push(`${c.documents.toLocaleString()} documents`);
      if (typeof c.chunks === "number") size.push(`${c.chunks.toLocaleString()} chunks`);
      option.textContent = size.length ? `${c.name} (${size.join(", ")})` : c.name;
      if (c.problem) option.textContent += " \u2014 problem";
      return option;
    });
    if (!options.length) {
      const none = make("option", "", "no collections yet");
      none.value = "";
      options.push(none);
      setStatus("No collection yet: make one with `ragcli ingest PATH -c NAME`.");
    }
    ui.collection.replaceChildren(...options);
    const names = collections.map((c) => c.name);
    if (preferred && names.includes(preferred)) ui.collection.value = preferred;
  }

  async function start() {
    ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      submit();
    });
    ui.searchOnly.addEventListener("change", () => {
      ui.ask.textContent = buttonLabel();
    });
    ui.answer.addEventListener("click", (event) => {
      const link = event.target.closest("a.cite");
      if (!link) return;
      event.preventDefault();
      const item = $("source-" + link.dataset.marker);
      if (!item) return;
      const details = item.querySelector("details");
      details.open = true;
      item.scrollIntoView({ block: "nearest", behavior: "smooth" });
      details.querySelector("summary").focus();
    });
    ui.ask.textContent = buttonLabel();
    setStatus("Connecting\u2026");
    try {
      const [health, listed] = await Promise.all([getJson("/health"), getJson("/collections")]);
      fillCollections(listed.collections || [], health.default_collection);
      if ((listed.collections || []).length) setStatus("");
    } catch (error) {
      const none = make("option", "", "unavailable");
      none.value = "";
      ui.collection.replaceChildren(none);
      setStatus("");
      showError(error);
    }
  }

  start();
})();
