// Chroma's token headers through the npm chromadb client:
//   CHROMA_JS_MODULE=<file URL of chromadb.mjs> node wire_auth.mjs PORT TOKEN
// Prints, for each way of sending the token (and a wrong and a missing one), "ok" or the error's name.
const { ChromaClient } = await import(process.env.CHROMA_JS_MODULE);
const [port, token] = [Number(process.argv[2]), process.argv[3]];
const ways = {
  "x-chroma-token": { "x-chroma-token": token },
  bearer: { Authorization: `Bearer ${token}` },
  wrong: { "x-chroma-token": `${token}x` },
  missing: undefined,
};
for (const [label, headers] of Object.entries(ways)) {
  try {
    const client = new ChromaClient({ host: "127.0.0.1", port, ssl: false, headers });
    const collection = await client.getOrCreateCollection({ name: `js-auth-${label}`, embeddingFunction: null });
    await collection.upsert({ ids: ["a"], embeddings: [[1, 2]] });
    console.log(`${label}: ok, count ${await collection.count()}`);
  } catch (e) {
    console.log(`${label}: ${e.name}`);
  }
}
