// Starts a Hono app on a free local port and says where: for the benchmark and the tests, which need a
// real socket but no fixed port. `frugal serve` listens on its configured port itself.
import type { AddressInfo } from "node:net";
import { serve, type ServerType } from "@hono/node-server";

export function listenLocal(app: {
  fetch: (r: Request) => Response | Promise<Response>;
}): Promise<{ server: ServerType; origin: string }> {
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (i: AddressInfo) =>
      resolve({ server, origin: `http://127.0.0.1:${i.port}` }),
    );
  });
}
