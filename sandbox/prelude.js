// Runs inside every skill isolate, before any skill code. It builds the `ctx` object.
//
// The script evaluates to one function that the worker calls once with `send`, a plain
// fire-and-forget function (an isolated-vm Callback whose result is ignored), and `intrinsic`, a
// synchronous Callback taking and returning strings (random bytes, URL parsing: things V8 alone
// cannot do well). Both stay in this closure: skill code can never reach them, a Reference, or
// any other host object. Replies
// come back through `deliver`, which the worker calls with the request id and a string. Every value crosses as a JSON string, parsed and stringified with the
// intrinsics captured here before skill code could replace them; the host validates every
// argument again on its side.
(function prelude(send, intrinsic) {
  "use strict";
  // Nothing that compiles native code or shares memory across threads.
  delete globalThis.WebAssembly;
  delete globalThis.SharedArrayBuffer;
  delete globalThis.Atomics;
  const parse = JSON.parse;
  const stringify = JSON.stringify;
  const freeze = Object.freeze;
  const StringCtor = String;
  const ErrorCtor = Error;
  const PromiseCtor = Promise;
  const then = Promise.prototype.then;
  const apply = Reflect.apply;
  const create = Object.create;

  // Waiting capability calls by id; a null-prototype object has no methods skill code could patch.
  const pending = create(null);
  let nextId = 1;
  function deliver(id, text) {
    const resolve = pending[id];
    if (resolve === undefined) return;
    delete pending[id];
    resolve(text);
  }
  function hostCall(op, argsJson) {
    return new PromiseCtor((resolve) => {
      const id = nextId++;
      pending[id] = resolve;
      send(id, op, argsJson);
    });
  }

  class RetryableError extends ErrorCtor {
    constructor(message) {
      super(message);
      this.name = "RetryableError";
      this.retryable = true;
    }
  }
  class CapabilityError extends ErrorCtor {
    constructor(code, message, retryable) {
      super(message);
      this.name = "CapabilityError";
      this.code = code;
      this.retryable = retryable === true;
    }
  }
  freeze(RetryableError.prototype);
  freeze(CapabilityError.prototype);

  function host(op, args) {
    const promise = hostCall(op, stringify(args));
    return apply(then, promise, [
      (text) => {
        const reply = parse(text);
        if (reply.ok) return reply.value;
        throw new CapabilityError(reply.error.code, reply.error.message, reply.error.retryable);
      },
    ]);
  }

  const str = (v) => (typeof v === "string" ? v : StringCtor(v));

  // ---- The standard globals skill authors expect, as far as they are safe in an isolate. ----
  // Each is defined here, before any skill code, on this isolate's own global object; a skill
  // that replaces one only affects itself. Randomness and URL parsing come from the host
  // through `intrinsic` (strings in, strings out); everything else is plain JavaScript.
  const defineProperty = Object.defineProperty;
  const mathMin = Math.min;
  const mathMax = Math.max;
  const Uint8ArrayCtor = Uint8Array;
  const fromCharCode = String.fromCharCode;
  const isView = ArrayBuffer.isView;
  const encodeURIComponentFn = encodeURIComponent;
  const decodeURIComponentFn = decodeURIComponent;
  const defineGlobal = (name, value) => defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  const intrinsicCall = (op, arg) => {
    if (typeof intrinsic !== "function") return "";
    const out = intrinsic(op, arg);
    return typeof out === "string" ? out : "";
  };
  const domError = (name, message) => {
    const e = new ErrorCtor(message);
    e.name = name;
    return e;
  };

  // TextEncoder / TextDecoder: UTF-8 only, as in the web platform's defaults.
  function utf8Encode(input) {
    const s = str(input);
    const out = [];
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        } else c = 0xfffd;
      } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    }
    return new Uint8ArrayCtor(out);
  }
  function bytesOf(input) {
    if (input === undefined) return new Uint8ArrayCtor(0);
    if (input instanceof ArrayBuffer) return new Uint8ArrayCtor(input);
    if (isView(input)) return new Uint8ArrayCtor(input.buffer, input.byteOffset, input.byteLength);
    throw new TypeError("expected an ArrayBuffer or a typed array");
  }
  function utf8Decode(bytes, fatal, ignoreBOM) {
    let out = "";
    let i = 0;
    if (!ignoreBOM && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) i = 3;
    const bad = () => {
      if (fatal) throw new TypeError("The encoded data was not valid UTF-8");
      return 0xfffd;
    };
    let chunk = [];
    while (i < bytes.length) {
      const b = bytes[i++];
      let c;
      if (b < 0x80) c = b;
      else {
        const n = b >= 0xf0 && b <= 0xf4 ? 3 : b >= 0xe0 ? 2 : b >= 0xc2 && b < 0xe0 ? 1 : -1;
        if (n < 0 || b > 0xf4) c = bad();
        else {
          c = b & (0x3f >> n);
          let k = 0;
          for (; k < n && i < bytes.length && (bytes[i] & 0xc0) === 0x80; k++) c = (c << 6) | (bytes[i++] & 63);
          if (k < n || (n === 2 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) || (n === 3 && (c < 0x10000 || c > 0x10ffff))) c = bad();
        }
      }
      if (c > 0xffff) {
        c -= 0x10000;
        chunk.push(0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
      } else chunk.push(c);
      if (chunk.length >= 4096) {
        out += apply(fromCharCode, undefined, chunk);
        chunk = [];
      }
    }
    return out + apply(fromCharCode, undefined, chunk);
  }
  const checkLabel = (label) => {
    const l = label === undefined ? "utf-8" : str(label).trim().toLowerCase();
    if (l !== "utf-8" && l !== "utf8" && l !== "unicode-1-1-utf-8") throw new RangeError(`TextDecoder: only utf-8 is supported, got "${l}"`);
  };
  class TextEncoder {
    get encoding() {
      return "utf-8";
    }
    encode(input = "") {
      return utf8Encode(input);
    }
    encodeInto(input, dest) {
      const bytes = utf8Encode(input);
      const n = mathMin(bytes.length, dest.length);
      dest.set(bytes.subarray(0, n));
      return { read: str(input).length, written: n };
    }
  }
  class TextDecoder {
    #fatal;
    #ignoreBOM;
    constructor(label, options) {
      checkLabel(label);
      this.#fatal = options !== undefined && options.fatal === true;
      this.#ignoreBOM = options !== undefined && options.ignoreBOM === true;
    }
    get encoding() {
      return "utf-8";
    }
    get fatal() {
      return this.#fatal;
    }
    get ignoreBOM() {
      return this.#ignoreBOM;
    }
    decode(input) {
      return utf8Decode(bytesOf(input), this.#fatal, this.#ignoreBOM);
    }
  }

  // atob / btoa: Latin-1 strings to and from base64, with the web platform's errors.
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  function btoa(input) {
    const s = str(input);
    let out = "";
    for (let i = 0; i < s.length; i += 3) {
      const a = s.charCodeAt(i);
      const b = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      const c = i + 2 < s.length ? s.charCodeAt(i + 2) : 0;
      if (a > 255 || b > 255 || c > 255) throw domError("InvalidCharacterError", "btoa: the string contains characters outside of the Latin1 range");
      const n = (a << 16) | (b << 8) | c;
      out += B64[n >> 18] + B64[(n >> 12) & 63] + (i + 1 < s.length ? B64[(n >> 6) & 63] : "=") + (i + 2 < s.length ? B64[n & 63] : "=");
    }
    return out;
  }
  function atob(input) {
    let s = str(input).replace(/[\t\n\f\r ]/g, "");
    if (s.length % 4 === 0) s = s.replace(/==?$/, "");
    if (s.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(s)) throw domError("InvalidCharacterError", "atob: the string to be decoded is not correctly encoded");
    let out = "";
    let bits = 0;
    let acc = 0;
    for (let i = 0; i < s.length; i++) {
      acc = (acc << 6) | B64.indexOf(s[i]);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out += fromCharCode((acc >> bits) & 255);
      }
    }
    return out;
  }

  // structuredClone: the serializable types a skill deals in; functions and symbols refuse, as in browsers.
  function structuredClone(value) {
    const seen = new Map();
    const clone = (v) => {
      if (typeof v === "function" || typeof v === "symbol") throw domError("DataCloneError", `${typeof v === "function" ? "a function" : "a symbol"} could not be cloned`);
      if (v === null || typeof v !== "object") return v;
      if (seen.has(v)) return seen.get(v);
      let out;
      if (Array.isArray(v)) {
        out = [];
        seen.set(v, out);
        for (let i = 0; i < v.length; i++) out[i] = clone(v[i]);
        return out;
      }
      if (v instanceof Date) out = new Date(v.getTime());
      else if (v instanceof RegExp) out = new RegExp(v.source, v.flags);
      else if (v instanceof ArrayBuffer) out = v.slice(0);
      else if (isView(v)) out = new v.constructor(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
      else if (v instanceof Map) {
        out = new Map();
        seen.set(v, out);
        for (const [k, x] of v) out.set(clone(k), clone(x));
        return out;
      } else if (v instanceof Set) {
        out = new Set();
        seen.set(v, out);
        for (const x of v) out.add(clone(x));
        return out;
      } else if (v instanceof ErrorCtor) {
        out = new ErrorCtor(v.message);
        out.name = v.name;
      } else {
        out = {};
        seen.set(v, out);
        for (const k of Object.keys(v)) out[k] = clone(v[k]);
        return out;
      }
      seen.set(v, out);
      return out;
    };
    return clone(value);
  }

  // crypto: random bytes from the host's CSPRNG (node:crypto), never Math.random.
  const MAX_RANDOM_BYTES = 65536;
  function randomBytes(n) {
    const hex = intrinsicCall("random", StringCtor(n));
    if (hex.length !== n * 2) throw domError("OperationError", "crypto: no random source");
    const out = new Uint8ArrayCtor(n);
    for (let i = 0; i < n; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
    return out;
  }
  const crypto = freeze({
    getRandomValues(array) {
      if (!isView(array) || array instanceof Float32Array || array instanceof Float64Array || array instanceof DataView) {
        throw domError("TypeMismatchError", "crypto.getRandomValues: expected an integer typed array");
      }
      if (array.byteLength > MAX_RANDOM_BYTES) throw domError("QuotaExceededError", `crypto.getRandomValues: at most ${MAX_RANDOM_BYTES} bytes at a time`);
      if (array.byteLength > 0) new Uint8ArrayCtor(array.buffer, array.byteOffset, array.byteLength).set(randomBytes(array.byteLength));
      return array;
    },
    randomUUID() {
      const b = randomBytes(16);
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      let h = "";
      for (let i = 0; i < 16; i++) h += (b[i] < 16 ? "0" : "") + b[i].toString(16);
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    },
  });

  // URLSearchParams: application/x-www-form-urlencoded, as the web platform serializes it.
  const formEncode = (s) =>
    encodeURIComponentFn(s)
      .replace(/%20/g, "+")
      .replace(/[!'()~]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  const formDecode = (s) => {
    const t = s.replace(/\+/g, " ");
    try {
      return decodeURIComponentFn(t);
    } catch {
      return t;
    }
  };
  class URLSearchParams {
    #list = [];
    #onChange = null;
    constructor(init) {
      if (init === undefined || init === null) return;
      if (typeof init === "object") {
        if (typeof init[Symbol.iterator] === "function") for (const pair of init) this.#list.push([str(pair[0]), str(pair[1])]);
        else for (const k of Object.keys(init)) this.#list.push([k, str(init[k])]);
        return;
      }
      this.#parse(str(init));
    }
    #parse(text) {
      this.#list = [];
      const s = text[0] === "?" ? text.slice(1) : text;
      for (const part of s.split("&")) {
        if (part === "") continue;
        const eq = part.indexOf("=");
        this.#list.push(eq < 0 ? [formDecode(part), ""] : [formDecode(part.slice(0, eq)), formDecode(part.slice(eq + 1))]);
      }
    }
    #changed() {
      if (this.#onChange) this.#onChange(this.toString());
    }
    static _link(params, text, onChange) {
      params.#parse(text);
      params.#onChange = onChange;
    }
    get size() {
      return this.#list.length;
    }
    append(name, value) {
      this.#list.push([str(name), str(value)]);
      this.#changed();
    }
    delete(name, value) {
      const n = str(name);
      this.#list = this.#list.filter(([k, v]) => !(k === n && (value === undefined || v === str(value))));
      this.#changed();
    }
    get(name) {
      const n = str(name);
      const hit = this.#list.find(([k]) => k === n);
      return hit === undefined ? null : hit[1];
    }
    getAll(name) {
      const n = str(name);
      return this.#list.filter(([k]) => k === n).map(([, v]) => v);
    }
    has(name, value) {
      const n = str(name);
      return this.#list.some(([k, v]) => k === n && (value === undefined || v === str(value)));
    }
    set(name, value) {
      const n = str(name);
      const i = this.#list.findIndex(([k]) => k === n);
      if (i < 0) this.#list.push([n, str(value)]);
      else {
        this.#list[i] = [n, str(value)];
        this.#list = this.#list.filter(([k], j) => j <= i || k !== n);
      }
      this.#changed();
    }
    sort() {
      this.#list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      this.#changed();
    }
    forEach(fn, thisArg) {
      for (const [k, v] of this.#list) apply(fn, thisArg, [v, k, this]);
    }
    *entries() {
      for (const [k, v] of this.#list) yield [k, v];
    }
    *keys() {
      for (const [k] of this.#list) yield k;
    }
    *values() {
      for (const [, v] of this.#list) yield v;
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    toString() {
      return this.#list.map(([k, v]) => formEncode(k) + "=" + formEncode(v)).join("&");
    }
  }
  const linkParams = URLSearchParams._link;
  delete URLSearchParams._link;

  // URL: parsed by the host's WHATWG parser (the same one ctx.fetch checks against).
  function parseUrl(input, base, prop, value) {
    const reply = parse(intrinsicCall("url", stringify([str(input), base === undefined ? null : str(base), prop === undefined ? null : prop, value === undefined ? null : str(value)])) || "null");
    if (reply === null || !reply.ok) throw new TypeError(`Invalid URL: ${str(input).slice(0, 200)}`);
    return reply.parts;
  }
  class URL {
    #parts;
    #params;
    constructor(input, base) {
      this.#parts = parseUrl(input, base);
      this.#params = new URLSearchParams();
      linkParams(this.#params, this.#parts.search, (q) => {
        this.#parts = parseUrl(this.#parts.href, undefined, "search", q);
      });
    }
    #set(prop, value) {
      this.#parts = parseUrl(this.#parts.href, undefined, prop, value);
      if (prop === "href" || prop === "search")
        linkParams(this.#params, this.#parts.search, (q) => {
          this.#parts = parseUrl(this.#parts.href, undefined, "search", q);
        });
    }
    static canParse(input, base) {
      try {
        parseUrl(input, base);
        return true;
      } catch {
        return false;
      }
    }
    static parse(input, base) {
      try {
        return new URL(input, base);
      } catch {
        return null;
      }
    }
    get origin() {
      return this.#parts.origin;
    }
    get href() {
      return this.#parts.href;
    }
    set href(v) {
      this.#set("href", v);
    }
    get protocol() {
      return this.#parts.protocol;
    }
    set protocol(v) {
      this.#set("protocol", v);
    }
    get username() {
      return this.#parts.username;
    }
    set username(v) {
      this.#set("username", v);
    }
    get password() {
      return this.#parts.password;
    }
    set password(v) {
      this.#set("password", v);
    }
    get host() {
      return this.#parts.host;
    }
    set host(v) {
      this.#set("host", v);
    }
    get hostname() {
      return this.#parts.hostname;
    }
    set hostname(v) {
      this.#set("hostname", v);
    }
    get port() {
      return this.#parts.port;
    }
    set port(v) {
      this.#set("port", v);
    }
    get pathname() {
      return this.#parts.pathname;
    }
    set pathname(v) {
      this.#set("pathname", v);
    }
    get search() {
      return this.#parts.search;
    }
    set search(v) {
      this.#set("search", v);
    }
    get hash() {
      return this.#parts.hash;
    }
    set hash(v) {
      this.#set("hash", v);
    }
    get searchParams() {
      return this.#params;
    }
    toString() {
      return this.#parts.href;
    }
    toJSON() {
      return this.#parts.href;
    }
  }

  // setTimeout / clearTimeout: the wait is a host request, answered after the delay or at the
  // attempt's deadline, whichever comes first; a timer never outlives its attempt.
  const timers = create(null);
  let nextTimer = 1;
  function setTimeout(fn, ms, ...args) {
    if (typeof fn !== "function") throw new TypeError("setTimeout: the callback must be a function");
    const id = nextTimer++;
    timers[id] = true;
    const delay = +ms;
    apply(then, host("sleep", [mathMax(delay, 0) || 0]), [
      () => {
        if (!timers[id]) return;
        delete timers[id];
        apply(fn, undefined, args);
      },
      () => {
        delete timers[id];
      },
    ]);
    return id;
  }
  function clearTimeout(id) {
    delete timers[id];
  }
  function queueMicrotask(fn) {
    if (typeof fn !== "function") throw new TypeError("queueMicrotask: the callback must be a function");
    apply(then, new PromiseCtor((resolve) => resolve()), [() => fn()]);
  }

  // console.*: one skill.log line per call in the security log (info, warn or error).
  const formatArg = (v) => {
    if (typeof v === "string") return v;
    try {
      const j = stringify(v);
      return j === undefined ? str(v) : j;
    } catch {
      try {
        return str(v);
      } catch {
        return "[unprintable]";
      }
    }
  };
  const consoleLine =
    (level) =>
    (...args) => {
      let message = "";
      for (let i = 0; i < args.length; i++) message += (i > 0 ? " " : "") + formatArg(args[i]);
      apply(then, host("log", [level, message, null]), [undefined, () => undefined]);
    };
  const console = freeze({
    log: consoleLine("info"),
    info: consoleLine("info"),
    debug: consoleLine("info"),
    trace: consoleLine("info"),
    warn: consoleLine("warn"),
    error: consoleLine("error"),
  });

  defineGlobal("TextEncoder", TextEncoder);
  defineGlobal("TextDecoder", TextDecoder);
  defineGlobal("atob", atob);
  defineGlobal("btoa", btoa);
  defineGlobal("structuredClone", structuredClone);
  defineGlobal("URLSearchParams", URLSearchParams);
  defineGlobal("setTimeout", setTimeout);
  defineGlobal("clearTimeout", clearTimeout);
  defineGlobal("queueMicrotask", queueMicrotask);
  defineGlobal("console", console);
  if (typeof intrinsic === "function") {
    defineGlobal("crypto", crypto);
    defineGlobal("URL", URL);
  }

  // ctx.fetch's answer, shaped like the web platform's Response (body already read: text and json).
  const STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    304: "Not Modified",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
  };
  const resolved = (fn) => new PromiseCtor((resolve) => resolve(fn()));
  class Headers {
    #map = new Map();
    constructor(init) {
      if (init !== null && typeof init === "object") {
        for (const k of Object.keys(init)) {
          const name = str(k).toLowerCase();
          const value = str(init[k]);
          this.#map.set(name, value);
          // Plain-object access (headers["content-type"]) keeps working, as before.
          if (!(name in Headers.prototype)) defineProperty(this, name, { value, enumerable: true });
        }
      }
    }
    get(name) {
      const v = this.#map.get(str(name).toLowerCase());
      return v === undefined ? null : v;
    }
    has(name) {
      return this.#map.has(str(name).toLowerCase());
    }
    forEach(fn, thisArg) {
      for (const [k, v] of this.#map) apply(fn, thisArg, [v, k, this]);
    }
    *entries() {
      yield* this.#map.entries();
    }
    *keys() {
      yield* this.#map.keys();
    }
    *values() {
      yield* this.#map.values();
    }
    [Symbol.iterator]() {
      return this.entries();
    }
  }
  function makeResponse(res) {
    const body = typeof res.text === "string" ? res.text : "";
    // `text()` as in fetch; the old `res.text` string still reads as the body (deprecated).
    const text = () => resolved(() => body);
    text.toString = () => body;
    text.toJSON = () => body;
    text.valueOf = () => body;
    text[Symbol.toPrimitive] = () => body;
    const headers = new Headers(res.headers);
    freeze(headers);
    return freeze({
      ok: res.status >= 200 && res.status < 300,
      status: res.status,
      statusText: STATUS_TEXT[res.status] || "",
      headers,
      url: res.url,
      redirected: res.redirects > 0,
      redirects: res.redirects,
      text: freeze(text),
      json: () => resolved(() => parse(body)),
    });
  }

  function makeCtx(env) {
    const log = (level) => (message, fields) => {
      // Fire and forget: a skill's log line never blocks or fails the skill.
      let payload;
      try {
        payload = [level, str(message), fields === undefined ? null : parse(stringify(fields))];
      } catch {
        payload = [level, str(message), null];
      }
      apply(then, host("log", payload), [undefined, () => undefined]);
    };
    return freeze({
      env: freeze(env),
      attempt: env.attempt,
      fs: freeze({
        readFile: (path) => host("fs.readFile", [str(path)]),
        writeFile: (path, data) => host("fs.writeFile", [str(path), str(data)]),
        list: (path) => host("fs.list", [str(path)]),
        delete: (path) => host("fs.delete", [str(path)]),
      }),
      fetch: (url, init) => {
        const opts = init === undefined ? {} : parse(stringify(init));
        return apply(then, host("fetch", [str(url), opts]), [makeResponse]);
      },
      exec: (command, args, options) => host("exec", [str(command), args === undefined ? [] : parse(stringify(args)), options === undefined ? {} : parse(stringify(options))]),
      log: freeze({ info: log("info"), warn: log("warn"), error: log("error") }),
      RetryableError,
    });
  }

  // Turns whatever the skill threw into plain data, here, inside the isolate and under the
  // host's deadline: hostile getters and proxies run in the sandbox, never in the host.
  function describeError(err) {
    let name = "Error";
    let message = "";
    let retryable = false;
    try {
      if (err !== null && (typeof err === "object" || typeof err === "function")) {
        name = str(err.name);
        message = str(err.message);
        retryable = err instanceof RetryableError || err.retryable === true;
      } else {
        message = str(err);
      }
    } catch {
      message = "the thrown value could not be read";
    }
    return { name: name.slice(0, 200), message: message.slice(0, 4000), retryable: retryable === true };
  }

  async function invoke(main, inputJson, envJson) {
    try {
      if (typeof main !== "function") {
        return "e" + stringify({ name: "TypeError", message: "the entry module has no default export function", retryable: false });
      }
      const env = parse(envJson);
      const output = await main(parse(inputJson), makeCtx(env));
      let json;
      try {
        json = stringify(output === undefined ? null : output);
      } catch (err) {
        const why = describeError(err).message;
        return "e" + stringify({ name: "OutputError", message: "the result is not JSON: " + why, retryable: false });
      }
      // The reply is a tag and the output's JSON, encoded once: the worker caps these very bytes.
      return "o" + (json === undefined ? "null" : json);
    } catch (err) {
      return "e" + stringify(describeError(err));
    }
  }

  return freeze({ invoke, deliver });
});
