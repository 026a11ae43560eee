// The cashier page: plain JavaScript over the till API (same origin, the page's session).
// A keyboard-wedge scanner types digits then Enter into the focused #scan field.
(function () {
  "use strict";
  const body = document.body;
  const statusUrl = body.dataset.statusUrl;
  const api = statusUrl.replace(/status$/, "");
  const $ = (id) => document.getElementById(id);

  function csrf() {
    const m = document.cookie.match(/(?:^|; )csrftoken=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  async function call(method, path, data) {
    const options = { method, headers: { "X-CSRFToken": csrf() }, credentials: "same-origin" };
    if (data !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(data);
    }
    const response = await fetch(api + path, options);
    const text = await response.text();
    const json = text ? JSON.parse(text) : null;
    if (!response.ok) {
      const error = new Error(json && json.error ? json.error.message : response.statusText);
      error.code = json && json.error ? json.error.code : "error";
      throw error;
    }
    return json;
  }

  // --- the status bar, on every screen ------------------------------------------------------
  function age(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 120) return Math.round(seconds) + " s";
    if (seconds < 7200) return Math.round(seconds / 60) + " min";
    return Math.round(seconds / 3600) + " h";
  }

  function renderStatus(s) {
    const online = $("st-online");
    online.textContent = s.online ? "ONLINE" : "OFFLINE";
    online.className = "pill " + (s.online ? "ok" : "bad");
    $("st-depth").textContent = s.outbox_depth;
    $("st-age").textContent = age(s.oldest_unsent_age_s);
    $("st-sync").textContent = s.last_sync_at ? new Date(s.last_sync_at).toLocaleTimeString() : "never";
    const devices = $("st-devices");
    devices.replaceChildren(...s.devices.map((d) => {
      const el = document.createElement("span");
      el.className = "device " + (d.state === "ok" ? "ok" : "bad");
      el.dataset.device = d.device;
      el.textContent = d.device + ": " + d.state;
      return el;
    }));
    const attention = $("st-attention");
    attention.replaceChildren(...s.attention.map((a) => {
      const li = document.createElement("li");
      li.className = a.kind;
      li.dataset.kind = a.kind;
      li.textContent = a.message;
      return li;
    }));
  }

  async function refreshStatus() {
    try {
      const response = await fetch(statusUrl, { credentials: "same-origin" });
      if (response.ok) renderStatus(await response.json());
    } catch (e) { /* the page is served by this node: only a restart gets here */ }
  }
  refreshStatus();
  setInterval(refreshStatus, 2000);

  const till = $("till");
  if (!till) return; // the sign-in page has the status bar only

  // --- messages and panels ------------------------------------------------------------------
  function say(text, kind) {
    const el = $("message");
    el.textContent = text || "";
    el.className = "message " + (kind || "");
  }

  function focusScan() {
    const scan = $("scan");
    if (scan && !$("sale-panel").hidden) scan.focus();
  }

  document.querySelectorAll("button[data-panel]").forEach((button) => {
    button.addEventListener("click", () => {
      if (!till.dataset.session) { say("Open a session first.", "error"); return; }
      for (const name of ["sale", "return", "cash"]) $(name + "-panel").hidden = name !== button.dataset.panel;
      say("");
      focusScan();
    });
  });

  // --- session ------------------------------------------------------------------------------
  $("open-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const session = await call("POST", "sessions", { opening_float: $("opening-float").value.trim() });
      till.dataset.session = session.session_id;
      $("open-panel").hidden = true;
      $("sale-panel").hidden = false;
      say("Session open.", "ok");
      focusScan();
      refreshStatus();
    } catch (e) { say(e.message, "error"); }
  });

  // --- the basket ---------------------------------------------------------------------------
  let basket = null;

  function renderBasket(b) {
    basket = b;
    const rows = $("lines").querySelector("tbody");
    rows.replaceChildren(...(b ? b.lines : []).map((line) => {
      const tr = document.createElement("tr");
      tr.dataset.lineNo = line.line_no;
      const cells = [line.line_no, line.name, line.qty, line.unit_price, line.discount, line.line_total];
      for (const value of cells) {
        const td = document.createElement("td");
        td.textContent = value;
        tr.appendChild(td);
      }
      const td = document.createElement("td");
      if (!line.weighed) {
        td.appendChild(lineButton("+", () => changeQty(line, 1)));
        td.appendChild(lineButton("−", () => changeQty(line, -1)));
      }
      td.appendChild(lineButton("✕", () => removeLine(line)));
      tr.appendChild(td);
      return tr;
    }));
    $("total-gross").textContent = b ? b.totals.gross : "0.00";
    $("total-tax").textContent = b ? b.totals.tax : "0.00";
    $("paid").textContent = b ? b.paid : "0.00";
    $("due").textContent = b ? b.due : "0.00";
    $("change").textContent = b ? b.change : "0.00";
  }

  function lineButton(label, action) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "line-action";
    button.textContent = label;
    button.addEventListener("click", action);
    return button;
  }

  async function ensureBasket() {
    if (basket && basket.status === "open") return basket;
    renderBasket(await call("POST", "baskets"));
    $("receipt").hidden = true;
    return basket;
  }

  async function changeQty(line, delta) {
    const qty = Number(line.qty) + delta;
    try {
      if (qty <= 0) return removeLine(line);
      renderBasket(await call("PATCH", `baskets/${basket.basket_id}/lines/${line.line_no}`, { qty: String(qty) }));
    } catch (e) { say(e.message, "error"); }
    focusScan();
  }

  async function removeLine(line) {
    try {
      renderBasket(await call("DELETE", `baskets/${basket.basket_id}/lines/${line.line_no}`, {}));
    } catch (e) { say(e.message, "error"); }
    focusScan();
  }

  $("scan-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const scan = $("scan");
    const code = scan.value.trim();
    const qty = $("qty").value.trim();
    if (!code) return;
    scan.value = "";
    try {
      const b = await ensureBasket();
      const data = { code };
      if (qty) data.qty = qty;
      renderBasket(await call("POST", `baskets/${b.basket_id}/lines`, data));
      $("qty").value = "";
      const last = basket.lines[basket.lines.length - 1];
      say(last ? `${last.name} ${last.qty} × ${last.unit_price}` : "", "ok");
    } catch (e) {
      say(e.message, "error");
      if (e.code === "weight_required") { scan.value = code; $("qty").focus(); }
    } finally {
      // Answered: a counter that tests (and a scanner's test mode) can wait for.
      const form = $("scan-form");
      form.dataset.answered = String(Number(form.dataset.answered || 0) + 1);
    }
    if (document.activeElement !== $("qty")) focusScan();
  });

  // While a tender or complete request is in flight its buttons stay disabled: a second tap
  // must not charge a card twice or race the completion.
  let paying = false;
  function setPaying(on) {
    paying = on;
    document.querySelectorAll("button.tender, #complete").forEach((b) => { b.disabled = on; });
  }

  document.querySelectorAll("button.tender").forEach((button) => {
    button.addEventListener("click", async () => {
      if (paying) return;
      if (!basket || basket.status !== "open") { say("Scan something first.", "error"); return; }
      const data = { method: button.dataset.method };
      const amount = $("tender-amount").value.trim();
      if (amount) data.amount = amount;
      if (data.method === "voucher") {
        data.reference = $("voucher-reference").value.trim();
        const supervisor = $("voucher-supervisor").value.trim();
        if (supervisor) { data.supervisor = supervisor; data.supervisor_pin = $("voucher-supervisor-pin").value; }
      }
      setPaying(true);
      try {
        renderBasket(await call("POST", `baskets/${basket.basket_id}/tenders`, data));
        $("tender-amount").value = "";
        if (data.method === "voucher") {
          ["voucher-reference", "voucher-supervisor", "voucher-supervisor-pin"].forEach((id) => { $(id).value = ""; });
        }
        const last = basket.tenders[basket.tenders.length - 1];
        say(`${last.method} ${last.amount}` + (last.offline_authorized ? " (offline, store and forward)" : "")
            + (Number(basket.change) > 0 ? ` · change ${basket.change}` : ""), "ok");
      } catch (e) { say(e.message, "error"); }
      finally { setPaying(false); }
      focusScan();
    });
  });

  $("complete").addEventListener("click", async () => {
    if (paying) return;
    if (!basket) { say("Nothing to complete.", "error"); return; }
    setPaying(true);
    try {
      const done = await call("POST", `baskets/${basket.basket_id}/complete`);
      const change = basket.change;
      renderBasket(null);
      $("receipt").textContent = done.receipt_text;
      $("receipt").hidden = false;
      $("receipt").dataset.receiptNo = done.receipt_no;
      $("reprint").hidden = false;
      say(`Sale ${done.receipt_no} complete` + (Number(change) > 0 ? ` · change ${change}` : ""), "ok");
      refreshStatus();
    } catch (e) { say(e.message, "error"); }
    finally { setPaying(false); }
    focusScan();
  });

  $("void").addEventListener("click", async () => {
    if (!basket) return;
    try {
      await call("DELETE", `baskets/${basket.basket_id}`, { reason: "voided at the till" });
      renderBasket(null);
      say("Basket voided.", "ok");
    } catch (e) { say(e.message, "error"); }
    focusScan();
  });

  $("reprint").addEventListener("click", async () => {
    const number = $("receipt").dataset.receiptNo;
    try {
      await call("POST", `receipts/${encodeURIComponent(number)}/reprint`, {});
      say(`Receipt ${number} sent to the printer again.`, "ok");
      refreshStatus();
    } catch (e) { say(e.message, "error"); }
  });

  // --- returns ------------------------------------------------------------------------------
  let original = null;
  $("return-find").addEventListener("submit", async (event) => {
    event.preventDefault();
    const number = $("return-receipt").value.trim();
    const rows = $("return-lines").querySelector("tbody");
    rows.replaceChildren();
    original = null;
    if (!number) return;
    try {
      original = await call("GET", `receipts/${encodeURIComponent(number)}`);
      for (const line of original.lines) {
        const done = original.returned[String(line.line_no)];
        const left = Number(line.qty) - (done ? Number(done.qty) : 0);
        const tr = document.createElement("tr");
        tr.dataset.lineNo = line.line_no;
        tr.innerHTML = "<td></td><td></td><td></td><td><input class='small return-qty' inputmode='decimal'></td>";
        tr.children[0].textContent = line.line_no;
        tr.children[1].textContent = line.name || line.sku;
        tr.children[2].textContent = line.line_total;
        tr.querySelector("input").value = String(left);
        rows.appendChild(tr);
      }
      say(`Receipt ${number}: choose what comes back.`, "ok");
    } catch (e) {
      say(e.code === "receipt_not_found"
        ? `${e.message} Return it without receipt: scan the item and ask a supervisor.`
        : e.message, "error");
    }
  });

  $("return-submit").addEventListener("click", async () => {
    const data = {};
    const number = $("return-receipt").value.trim();
    if (number) data.receipt_no = number;
    if (original) {
      data.lines = [...$("return-lines").querySelectorAll("tr")]
        .map((tr) => ({ original_line_no: Number(tr.dataset.lineNo), qty: tr.querySelector("input").value.trim() }))
        .filter((line) => line.qty && Number(line.qty) > 0);
    } else {
      const code = $("return-code").value.trim();
      data.lines = code ? [{ code, qty: $("return-code-qty").value.trim() || undefined }] : [];
    }
    const supervisor = $("return-supervisor").value.trim();
    if (supervisor) { data.supervisor = supervisor; data.supervisor_pin = $("return-supervisor-pin").value; }
    try {
      const done = await call("POST", "returns", data);
      $("return-receipt-text").textContent = done.receipt_text;
      $("return-receipt-text").hidden = false;
      $("return-lines").querySelector("tbody").replaceChildren();
      original = null;
      say(`Return ${done.receipt_no}: refund ${done.totals.gross} in cash.`, "ok");
      refreshStatus();
    } catch (e) { say(e.message, "error"); }
  });

  // --- cash and close -----------------------------------------------------------------------
  $("cash-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = { kind: $("cash-kind").value, amount: $("cash-amount").value.trim(), reason: $("cash-reason").value.trim() };
    const supervisor = $("cash-supervisor").value.trim();
    if (supervisor) { data.supervisor = supervisor; data.supervisor_pin = $("cash-supervisor-pin").value; }
    try {
      await call("POST", "cash-movements", data);
      say(`${data.kind.replace("_", " ")} ${data.amount} recorded.`, "ok");
      refreshStatus();
    } catch (e) { say(e.message, "error"); }
  });

  $("close-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const closed = await call("POST", `sessions/${till.dataset.session}/close`, { counted_cash: $("counted-cash").value.trim() });
      const z = closed.z_report;
      $("z-report").textContent = [
        `Z-report ${z.session_id}`, `sales ${z.sale_count}, returns ${z.return_count}`,
        `gross ${z.gross}, tax ${z.tax}`,
        ...Object.entries(z.tenders).map(([method, amount]) => `${method} ${amount}`),
        `expected cash ${z.expected_cash}`, `counted cash ${z.counted_cash}`, `over/short ${z.over_short}`,
      ].join("\n");
      $("z-report").hidden = false;
      till.dataset.session = "";
      $("open-panel").hidden = false;
      say("Session closed.", "ok");
      refreshStatus();
    } catch (e) { say(e.message, "error"); }
  });

  // Keep the scanner's target focused: a click elsewhere on the sale screen gives it back.
  document.addEventListener("click", (event) => {
    if (!event.target.closest("input, select, textarea")) setTimeout(focusScan, 0);
  });
  focusScan();
})();
