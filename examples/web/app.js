// The example web client: plain browser JavaScript, no build step, no framework.
// Every call goes to the public API on another origin (CORS): its base URL is ?api=... in
// this page's address, else the one saved with "Use", else http://127.0.0.1:8000.
"use strict";

const PAGE_SIZE = 10;
const state = {
  api: new URLSearchParams(location.search).get("api")
    || localStorage.getItem("api") || "http://127.0.0.1:8000",
  page: 1,
  filters: {},
  token: null, // the bearer token from POST /public-api/tokens: in memory only
  userId: null,
  userName: null,
};

const $ = (id) => document.getElementById(id);

function show(text, ok) {
  const box = $("message");
  box.textContent = text;
  box.className = ok ? "ok" : "error";
}

// One call to the API: JSON in and out. An error answer becomes an Error whose message is
// the API's own ("price: must be an integer ..."); a blocked or failed fetch says so.
async function api(method, path, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (state.token) init.headers.Authorization = `Bearer ${state.token}`;
  let response;
  try {
    response = await fetch(state.api + path, init);
  } catch (error) {
    // What a browser reports when CORS refuses us (or the API is down): no detail on purpose.
    throw new Error(`cannot reach the API at ${state.api} (${error.message})`);
  }
  const data = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    throw new Error(data && data.errors ? data.errors.join("; ") : `HTTP ${response.status}`);
  }
  return { data, etag: response.headers.get("ETag") };
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text; // names are user input: never HTML
  if (className) td.className = className;
  return td;
}

async function loadListings() {
  const query = new URLSearchParams({ page_num: state.page, page_size: PAGE_SIZE, ...state.filters });
  let data;
  try {
    ({ data } = await api("GET", `/public-api/listings?${query}`));
  } catch (error) {
    show(error.message, false);
    $("listings").replaceChildren();
    return;
  }
  const body = $("listings");
  body.replaceChildren();
  for (const listing of data.listings) {
    const row = body.insertRow();
    row.dataset.id = listing.id;
    cell(row, listing.id);
    cell(row, listing.listing_type);
    cell(row, listing.price.toLocaleString("en"), "price");
    cell(row, listing.user ? listing.user.name : "(unknown)");
    const actions = row.insertCell();
    if (listing.user && listing.user.id === state.userId) {
      actions.append(button("Edit", () => startEdit(listing)), " ",
                     button("Delete", () => remove(listing.id)));
    }
  }
  if (!data.listings.length) {
    cell(body.insertRow(), state.page > 1 ? "No more listings." : "No listings.").colSpan = 5;
  }
  $("page-num").textContent = state.page;
  $("prev").disabled = state.page === 1;
  $("next").disabled = data.listings.length < PAGE_SIZE;
}

function button(text, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

function startEdit(listing) {
  $("listing-id").value = listing.id;
  $("listing-type").value = listing.listing_type;
  $("listing-price").value = listing.price;
  $("edit-title").textContent = `Edit listing #${listing.id}`;
  $("listing-submit").textContent = "Save";
  $("listing-cancel").hidden = false;
}

function stopEdit() {
  $("listing-form").reset();
  $("listing-id").value = "";
  $("edit-title").textContent = "New listing";
  $("listing-submit").textContent = "Create";
  $("listing-cancel").hidden = true;
}

async function remove(id) {
  try {
    // If-Match: the version this page last saw (the ETag the API exposes to it).
    const { etag } = await api("GET", `/public-api/listings/${id}`);
    await api("DELETE", `/public-api/listings/${id}`, undefined, { "If-Match": etag });
    show(`Listing #${id} deleted.`, true);
  } catch (error) {
    show(error.message, false);
  }
  await loadListings();
}

function price(text) {
  // Sent as typed: the API, not this page, says what a valid price is.
  return text.trim() === "" ? undefined : (/^-?\d+$/.test(text.trim()) ? Number(text) : text);
}

function whoChanged() {
  $("who").textContent = state.userId
    ? `logged in as ${state.userName ?? "user"} (#${state.userId})` : "not logged in";
}

function bind() {
  $("api-url").value = state.api;
  $("api-save").addEventListener("click", () => {
    state.api = $("api-url").value.replace(/\/+$/, "");
    localStorage.setItem("api", state.api);
    state.page = 1;
    loadListings();
  });
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    state.filters = {};
    if ($("filter-type").value) state.filters.listing_type = $("filter-type").value;
    if ($("filter-min").value) state.filters.min_price = $("filter-min").value;
    if ($("filter-max").value) state.filters.max_price = $("filter-max").value;
    state.page = 1;
    $("message").textContent = "";
    $("message").className = "";
    loadListings();
  });
  $("prev").addEventListener("click", () => { state.page -= 1; loadListings(); });
  $("next").addEventListener("click", () => { state.page += 1; loadListings(); });

  $("signup").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const { data } = await api("POST", "/public-api/users",
        { name: $("signup-name").value, password: $("signup-password").value });
      $("login-user").value = data.user.id;
      show(`Signed up as ${data.user.name}, user #${data.user.id}: now log in.`, true);
    } catch (error) {
      show(error.message, false);
    }
  });

  $("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    const userId = Number($("login-user").value);
    try {
      state.token = null;
      const { data } = await api("POST", "/public-api/tokens",
        { user_id: userId, password: $("login-password").value });
      state.token = data.token;
      state.userId = userId;
      state.userName = (await api("GET", `/public-api/users/${userId}`)).data.user.name;
      whoChanged();
      show(`Logged in as ${state.userName}.`, true);
      loadListings();
    } catch (error) {
      show(error.message, false);
    }
  });
  $("logout").addEventListener("click", () => {
    Object.assign(state, { token: null, userId: null, userName: null });
    whoChanged();
    loadListings();
  });

  $("listing-cancel").addEventListener("click", stopEdit);
  $("listing-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = $("listing-id").value;
    const fields = { listing_type: $("listing-type").value, price: price($("listing-price").value) };
    try {
      if (id) {
        const { etag } = await api("GET", `/public-api/listings/${id}`);
        await api("PATCH", `/public-api/listings/${id}`, fields, { "If-Match": etag });
        show(`Listing #${id} saved.`, true);
      } else {
        if (!state.userId) throw new Error("log in first: a listing is created as its owner");
        const { data } = await api("POST", "/public-api/listings",
          { user_id: state.userId, ...fields });
        show(`Listing #${data.listing.id} created.`, true);
      }
      stopEdit();
      await loadListings();
    } catch (error) {
      show(error.message, false);
    }
  });
}

bind();
loadListings();
