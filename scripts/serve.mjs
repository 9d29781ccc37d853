#!/usr/bin/env node
// A dependency-free static server for the demo page and the browser test.
//
//   /          -> www/        the demo page (and the browser test's parity page)
//   /pkg/      -> pkg/web/    the web build of the npm package (scripts/build-wasm.sh)
//   /pkg/web/  -> pkg/web/    the same build where the package keeps it, and
//   /js/       -> js/         its sync client: /js/sync-web.mjs imports ../pkg/web/edgerec.js
//   /models/   -> --models    a directory holding bundle.edgerec (default: artifacts/)
//
// The layout of `edgerec serve --www www --pkg pkg/web --js js --models DIR`, without the
// release API (/v1/…): the demo page served from here loads its bundle directly.
//
// CLI:   node scripts/serve.mjs [--port 8080] [--host 127.0.0.1] [--models DIR]
//        (--models defaults to $EDGEREC_ARTIFACTS, then artifacts/)
// API:   const { url, close } = await startServer({ port: 0 });
//
// Files only, GET and HEAD only, no directory listings; a path with a `..` segment is refused.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const REPO = resolve(fileURLToPath(new URL("..", import.meta.url)));

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".ts": "text/plain; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".ico": "image/x-icon",
};

/**
 * Starts the server. Relative directories resolve against the repository root.
 * @param {{ port?: number, host?: string, models?: string, www?: string, pkg?: string, js?: string }} [options]
 *   port 0 picks a free port.
 * @returns {Promise<{ server: import("node:http").Server, url: string, close: () => Promise<void> }>}
 *   url ends with "/".
 */
export async function startServer({
  port = 8080,
  host = "127.0.0.1",
  models = "artifacts",
  www = "www",
  pkg = "pkg/web",
  js = "js",
} = {}) {
  // Longest prefix first; each maps a URL prefix to a directory.
  const mounts = [
    ["/models/", resolve(REPO, models)],
    ["/pkg/web/", resolve(REPO, pkg)],
    ["/pkg/", resolve(REPO, pkg)],
    ["/js/", resolve(REPO, js)],
    ["/", resolve(REPO, www)],
  ];
  const server = createServer((req, res) => {
    handle(mounts, req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, `internal error: ${err.message}`);
      else res.destroy(err);
    });
  });
  await new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, host, () => {
      server.off("error", fail);
      ok();
    });
  });
  const address = server.address();
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    server,
    url: `http://${shownHost}:${address.port}/`,
    close: () =>
      new Promise((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

async function handle(mounts, req, res) {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("Allow", "GET, HEAD");
    return send(res, 405, "method not allowed");
  }
  // The raw request path, decoded but not normalised: traversal is refused, not resolved away.
  let path;
  try {
    path = decodeURIComponent(req.url.split("?")[0]);
  } catch {
    return send(res, 400, "bad request");
  }
  // `..` segments, NULs and backslashes have no place in these URLs.
  if (!path.startsWith("/") || path.split("/").includes("..") || /[\0\\]/.test(path)) {
    return send(res, 400, "bad path");
  }

  const [prefix, dir] = mounts.find(([p]) => path.startsWith(p));
  let file = join(dir, path.slice(prefix.length));
  if (path.endsWith("/")) file = join(file, "index.html");
  // Belt and braces: whatever join made of it must stay inside the mount.
  if (file !== dir && !file.startsWith(dir + sep)) return send(res, 400, "bad path");

  let info;
  try {
    info = await stat(file);
  } catch {
    return send(res, 404, "not found");
  }
  if (!info.isFile()) return send(res, 404, "not found");

  res.writeHead(200, {
    "Content-Type": MIME[extname(file).toLowerCase()] ?? "application/octet-stream",
    "Content-Length": info.size,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
  });
  if (req.method === "HEAD") return res.end();
  await new Promise((ok, fail) => {
    createReadStream(file).on("error", fail).pipe(res).on("finish", ok).on("error", fail);
  });
}

function send(res, status, text) {
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" });
  res.end(`${text}\n`);
}

// Run as a program (not when imported by a test).
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "8080" },
      host: { type: "string", default: "127.0.0.1" },
      models: { type: "string" },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`serve: --port must be an integer in 0..65535, got ${values.port}`);
    process.exit(2);
  }
  // A --models or $EDGEREC_ARTIFACTS path is relative to the caller's directory.
  const models = resolve(values.models ?? process.env.EDGEREC_ARTIFACTS ?? join(REPO, "artifacts"));
  const { url } = await startServer({ port, host: values.host, models });
  console.log(`edgerec demo: ${url}`);
}
