// An app written for Chroma's server, run through the npm `chromadb` client (3.x) under node:
//   CHROMA_JS_MODULE=<file URL of node_modules/chromadb/dist/chromadb.mjs> node wire_app.mjs PORT
// tests/test_chroma_wire.py runs it against `chroma run` and against `vectordb serve` and
// compares the printed lines. It prints values, counts and error classes; distances are
// rounded to 4 places (two engines may differ in the last float bits).

const { ChromaClient, registerEmbeddingFunction } = await import(process.env.CHROMA_JS_MODULE);
const port = Number(process.argv[2]);

// Keys sorted at every level, so that printed objects do not depend on key order.
function canon(value) {
  if (Array.isArray(value)) return value.map(canon);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canon(value[k])]));
  }
  return value;
}
const show = (label, value) => console.log(`${label}: ${JSON.stringify(canon(value))}`);
const round4 = (rows) => rows.map((row) => row.map((x) => Math.round(x * 1e4) / 1e4));

async function error(label, call) {
  try {
    await call();
    console.log(`${label}: no error`);
  } catch (e) {
    console.log(`${label}: ${e.name}`);
  }
}

// A client-side embedding function with a name and a config: the server stores them, the client embeds.
class LetterCounts {
  constructor(dim = 6) { this.dim = dim; this.name = "wire-letter-counts"; }
  async generate(texts) {
    return texts.map((text) => {
      const v = new Array(this.dim).fill(0);
      for (const ch of text.toLowerCase()) if (ch >= "a" && ch <= "z") v[(ch.charCodeAt(0) - 97) % this.dim] += 1;
      return v;
    });
  }
  getConfig() { return { dim: this.dim }; }
  static buildFromConfig(config) { return new LetterCounts(config.dim); }
}
registerEmbeddingFunction("wire-letter-counts", LetterCounts);

// A small deterministic generator, so that both servers get the same "random" vectors.
function vectors(n, dim) {
  let state = 12345;
  const next = () => { state = (state * 1103515245 + 12345) % 2147483648; return state / 2147483648; };
  return Array.from({ length: n }, () => Array.from({ length: dim }, next));
}

const client = new ChromaClient({ host: "127.0.0.1", port, ssl: false });
for (const c of await client.listCollections()) await client.deleteCollection({ name: c.name });

show("heartbeat is number", typeof (await client.heartbeat()) === "number");
show("max batch", await client.getMaxBatchSize());
const notes = await client.createCollection({ name: "notes", metadata: { topic: "demo", level: 2 }, embeddingFunction: null });
const people = await client.createCollection({ name: "people", embeddingFunction: null });
show("created", [notes.name, notes.metadata, people.name, people.metadata ?? null]);
show("configuration function", notes.configuration.embedding_function ?? notes.configuration.embeddingFunction ?? null);
const again = await client.getOrCreateCollection({ name: "notes", metadata: { ignored: true }, embeddingFunction: null });
show("get_or_create keeps", [again.id === notes.id, again.metadata]);
show("list", (await client.listCollections()).map((c) => c.name).sort());
show("list page", (await client.listCollections({ limit: 1, offset: 1 })).length);
show("count collections", await client.countCollections());
const byName = await client.getCollection({ name: "notes" });
show("get by name", [byName.id === notes.id, byName.metadata, await byName.count()]);
const byId = await client.getCollectionById(notes.id);
show("get by id", [byId.name, byId.metadata]);
await people.modify({ name: "persons", metadata: { kind: "humans" } });
const renamed = await client.getCollection({ name: "persons" });
show("modified", [renamed.name, renamed.metadata, renamed.id === people.id]);
await error("get renamed-away", () => client.getCollection({ name: "people" }));
await error("duplicate create", () => client.createCollection({ name: "notes", embeddingFunction: null }));
await error("bad name", () => client.createCollection({ name: "x", embeddingFunction: null }));
await client.deleteCollection({ name: "persons" });
show("after delete", (await client.listCollections()).map((c) => c.name).sort());
await error("delete missing", () => client.deleteCollection({ name: "persons" }));
await error("reset refused", () => client.reset());

await notes.add({
  ids: ["n1", "n2", "n3", "n4", "n5"],
  embeddings: [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0], [0.1, 0.2, 0.3]],
  documents: ["apples and pears", "the quick brown fox", "vectors in space", "apple pie recipe", "plain five"],
  metadatas: [
    { year: 2019, tags: ["fruit", "food"], ok: true },
    { year: 2021, tags: ["animal"], ok: false },
    { year: 2023, tags: ["math", "space"], score: 0.5 },
    { year: 2020, tags: ["food"], author: "ann" },
    { year: 2017 },
  ],
});
show("count after add", await notes.count());
await notes.upsert({ ids: ["n5", "n6"], embeddings: [[0.1, 0.2, 0.4], [0.3, 0.3, 0.3]],
  documents: ["upserted five", "brand new six"], metadatas: [{ year: 2024 }, { year: 2018, tags: ["new"] }] });
await notes.update({ ids: ["n2"], embeddings: [[0, 0.9, 0.1]], metadatas: [{ year: 2022, extra: "x" }],
  documents: ["the slow brown fox"] });
show("count after upsert", await notes.count());
const updated = await notes.get({ ids: ["n2", "n5", "n6"] });
show("after update", [updated.ids, updated.documents, updated.metadatas]);
show("embeddings", (await notes.get({ ids: ["n4", "n5"], include: ["embeddings"] })).embeddings);
await error("wrong dimension", () => notes.add({ ids: ["bad"], embeddings: [[1, 2]] }));
await error("duplicate ids", () => notes.add({ ids: ["d", "d"], embeddings: [[1, 0, 0], [0, 1, 0]] }));

const ids = async (args) => (await notes.get(args)).ids;
show("where $gte", await ids({ where: { year: { $gte: 2021 } } }));
show("where $in", await ids({ where: { year: { $in: [2019, 2020, 2018] } } }));
show("where $contains list", await ids({ where: { tags: { $contains: "food" } } }));
show("where $and", await ids({ where: { $and: [{ year: { $gt: 2018 } }, { ok: true }] } }));
show("where_document $contains", await ids({ whereDocument: { $contains: "fox" } }));
show("where_document $regex", await ids({ whereDocument: { $regex: "^app" } }));
show("limit offset", await ids({ limit: 2, offset: 1 }));
const result = await notes.query({ queryEmbeddings: [[1, 0.1, 0], [0, 0, 1]], nResults: 3 });
show("query ids", result.ids);
show("query distances", round4(result.distances));
show("query documents", result.documents);
const filtered = await notes.query({ queryEmbeddings: [[1, 0, 0]], nResults: 10,
  where: { year: { $lte: 2022 } }, whereDocument: { $contains: "o" } });
show("query filtered", filtered.ids);
const withIds = await notes.query({ queryEmbeddings: [[0, 1, 0.2]], nResults: 2, ids: ["n1", "n3", "n6"],
  include: ["embeddings", "metadatas", "distances"] });
show("query ids= and include", [withIds.ids, withIds.metadatas, withIds.embeddings]);
await error("query wrong dimension", () => notes.query({ queryEmbeddings: [[1, 0]] }));
show("delete by ids", await notes.delete({ ids: ["n6"] }) ?? null);
await notes.delete({ where: { year: { $lt: 2020 } } });
show("count after deletes", await notes.count());

const docs = await client.createCollection({ name: "docs", embeddingFunction: new LetterCounts(6) });
show("function stored", docs.configuration.embeddingFunction ?? docs.configuration.embedding_function ?? null);
await docs.add({ ids: ["a", "b", "c"], documents: ["aaa bbb", "ccc ddd", "eeee ffff"] });
const hit = await docs.query({ queryTexts: ["aab"], nResults: 2 });
show("query by text", [hit.ids, round4(hit.distances)]);
const reopened = await client.getCollection({ name: "docs" });
show("reopened embeds", (await reopened.query({ queryTexts: ["ccd"], nResults: 1 })).ids);

const big = await client.createCollection({ name: "batch", embeddingFunction: null });
const rows = vectors(3000, 8);
await big.add({ ids: rows.map((_, i) => `r${String(i).padStart(5, "0")}`), embeddings: rows,
  metadatas: rows.map((_, i) => ({ i, even: i % 2 === 0, bucket: `b${i % 5}` })) });
show("batch count", await big.count());
show("batch query", (await big.query({ queryEmbeddings: [rows[123]], nResults: 3, include: [] })).ids);
show("batch page", (await big.get({ limit: 3, offset: 2995, include: ["metadatas"] })).metadatas);
await big.delete({ where: { bucket: "b3" } });
show("batch count after", await big.count());

await error("missing collection", () => client.getCollection({ name: "nowhere" }));
await client.deleteCollection({ name: "notes" });
await error("use after delete", () => notes.count());
show("final", (await client.listCollections()).map((c) => c.name).sort());
