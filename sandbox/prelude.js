// Runs inside every skill isolate, before any skill code. It builds the `ctx` object.
//
// The script evaluates to one function that the worker calls once with `send`, a plain
// fire-and-forget function (an isolated-vm Callback whose result is ignored). It stays in this
// closure: skill code can never reach it, a Reference, or any other host object. Replies
// come back through `deliver`, which the worker calls with the request id and a string. Every value crosses as a JSON string, parsed and stringified with the
// intrinsics captured here before skill code could replace them; the host validates every
// argument again on its side.
(function prelude(send) {
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

  function makeCtx(env) {
    const log = (level) => (message, fields) => {
      // Fire and forget: a skill's log line never blocks or fails the skill.
      let payload;
      try {
        payload = [level, str(message), fields === undefined ? null : parse(stringify(fields))];
      } catch (e) {
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
        return apply(then, host("fetch", [str(url), opts]), [
          (res) => {
            res.json = () => parse(res.text);
            return freeze(res);
          },
        ]);
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
    } catch (e) {
      message = "the thrown value could not be read";
    }
    return { name: name.slice(0, 200), message: message.slice(0, 4000), retryable: retryable === true };
  }

  async function invoke(main, inputJson, envJson) {
    try {
      if (typeof main !== "function") {
        return stringify({ ok: false, error: { name: "TypeError", message: "the entry module has no default export function", retryable: false } });
      }
      const env = parse(envJson);
      const output = await main(parse(inputJson), makeCtx(env));
      let json;
      try {
        json = stringify(output === undefined ? null : output);
      } catch (err) {
        const why = describeError(err).message;
        return stringify({ ok: false, error: { name: "OutputError", message: "the result is not JSON: " + why, retryable: false } });
      }
      return stringify({ ok: true, json: json === undefined ? "null" : json });
    } catch (err) {
      return stringify({ ok: false, error: describeError(err) });
    }
  }

  return freeze({ invoke, deliver });
});
