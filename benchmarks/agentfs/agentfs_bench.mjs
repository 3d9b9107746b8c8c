// The AgentFS side of benchmarks/agentfs/compare.sh: sequential awaited
// calls through AgentFS's TypeScript SDK, as an agent makes them.
// Usage: node agentfs_bench.mjs DB_PATH OPS   (prints one JSON line of ops/s)
import { AgentFS } from "agentfs-sdk";

const [dbPath, opsText] = process.argv.slice(2);
const ops = Number(opsText);
const agent = await AgentFS.open({ path: dbPath });

async function rate(fn) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) await fn(i);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return ops / seconds;
}

const block = Buffer.alloc(4096, "x");
const out = {
  kv_set: await rate((i) => agent.kv.set(`key${i % 1000}`, { step: i })),
  tools_record: await rate((i) => {
    const now = Date.now();
    return agent.tools.record(i % 3 === 0 ? "shell" : "read_file", now, now,
                              { path: `/src/file${i % 100}.c`, lines: [1, 80] },
                              { ok: true, bytes: 2048 });
  }),
  write_file_4k: await rate((i) => agent.fs.writeFile(`/f${i}`, block)),
};
await agent.close();
console.log(JSON.stringify(out));
