/**
 * A small client written against the generated types only (src/generated/api.d.ts,
 * from /openapi.json by openapi-typescript, never edited): sign up or log in, create a
 * task, list tasks, read the ETag, and handle a problem by switching on its `code`.
 * `tsc --strict` compiling this file is the check that the document is precise enough
 * for a typed client. Run against a server: TODO_API_BASE=http://127.0.0.1:8000 node dist/example.js
 */
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api.js";

type ErrorCode = components["schemas"]["ErrorCode"];
type Task = components["schemas"]["TaskPublic"];

const client = createClient<paths>({
  baseUrl: process.env["TODO_API_BASE"] ?? "http://127.0.0.1:8000",
});

/** Every stable code, shared by all routes: a client can map them to messages. */
export function explain(code: ErrorCode): string {
  switch (code) {
    case "invalid_credentials":
      return "Wrong email or password";
    case "rate_limited":
      return "Too many attempts, wait a little";
    case "validation_error":
      return "Some fields are not valid";
    default:
      return code;
  }
}

async function accessToken(email: string, password: string): Promise<string> {
  const signup = await client.POST("/api/v1/auth/signup", { body: { email, password } });
  if (signup.data) {
    return signup.data.access_token;
  }
  // The sign-up's own codes: narrowing on `code` is checked by the compiler.
  if (signup.error.code !== "email_taken") {
    throw new Error(`sign-up failed: ${explain(signup.error.code)}`);
  }
  const login = await client.POST("/api/v1/auth/login", { body: { email, password } });
  if (login.error) {
    if (login.error.code === "invalid_credentials" || login.error.code === "rate_limited") {
      throw new Error(explain(login.error.code));
    }
    // @ts-expect-error: login never answers task_not_found (its codes are an enum per response)
    const impossible: typeof login.error.code = "task_not_found";
    throw new Error(`login failed: ${login.error.code} ${impossible}`);
  }
  return login.data.access_token;
}

async function main(): Promise<void> {
  const email = process.env["TODO_API_EMAIL"] ?? `ts-client-${Date.now()}@example.com`;
  const token = await accessToken(email, "a long enough passphrase");
  const headers = { Authorization: `Bearer ${token}` };

  const created = await client.POST("/api/v1/tasks", {
    body: { title: "Write the typed client", priority: "high", tags: ["client"] },
    headers,
  });
  if (created.error) {
    throw new Error(`create failed: ${created.error.code} ${created.error.detail}`);
  }
  const task: Task = created.data;
  const etag: string | null = created.response.headers.get("ETag"); // `"<version>"`
  console.log(`created ${task.id} version ${task.version}, ETag ${etag}`);

  const list = await client.GET("/api/v1/tasks", {
    params: { query: { status: "pending", sort_by: "priority", limit: 10 } },
    headers,
  });
  if (list.error) {
    throw new Error(`list failed: ${explain(list.error.code)}`);
  }
  console.log(`${list.data.total} pending: ${list.data.items.map((t) => t.title).join(", ")}`);

  // A stale If-Match is a problem with code precondition_failed; the field errors of
  // a 422 carry their type and limit.
  const stale = await client.PATCH("/api/v1/tasks/{task_id}", {
    params: { path: { task_id: task.id }, header: { "If-Match": '"999"' } },
    body: { title: "" },
    headers,
  });
  if (stale.error) {
    switch (stale.error.code) {
      case "precondition_failed":
        console.log("someone changed it meanwhile: reload and retry");
        break;
      case "validation_error":
        for (const item of stale.error.errors ?? []) {
          console.log(`${item.field}: ${item.message} (${item.type}, min ${item.min_length})`);
        }
        break;
      case "task_not_found":
        console.log("gone");
        break;
      default:
        console.log(explain(stale.error.code));
    }
  }
}

if (process.env["TODO_API_BASE"]) {
  await main();
}
