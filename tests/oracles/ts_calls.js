// ts_calls: the TypeScript checker's answer for every call and `new` in a source tree, as JSON lines.
//
// Usage: node ts_calls.js ROOT [TYPESCRIPT_MODULE_DIR]
//
// Every .ts/.tsx file under ROOT (node_modules and .d.ts files left out) goes into one program;
// for each call the checker's resolved signature names a declaration. Each line: {"file", "line"
// (where the callee expression starts), "name" (the called identifier), "kind": "repo" | "ext" |
// "unknown", "decl": [file, line] (repo: where the function, method or class is declared)}.
// "ext": declared outside ROOT (lib.d.ts, a package); "unknown": the checker found no declaration.
const path = require("path");
const fs = require("fs");
const ts = require(process.argv[3] ? path.join(process.argv[3], "typescript") : "typescript");

const root = path.resolve(process.argv[2]);
const files = [];
(function walk(d) {
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    if (e.name === "node_modules" || e.name.startsWith(".")) continue;
    const p = path.join(d, e.name);
    if (e.isDirectory()) walk(p);
    else if (/\.tsx?$/.test(e.name) && !e.name.endsWith(".d.ts")) files.push(p);
  }
})(root);
// A package imports itself by its package.json name (`rxjs/map`): map that name to its sources.
const paths = {};
try {
  const name = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).name;
  if (name) Object.assign(paths, { [name]: ["src/index", "index"], [name + "/*"]: ["src/*", "*"] });
} catch (e) {}
const program = ts.createProgram(files, {
  target: ts.ScriptTarget.ESNext, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler,
  noEmit: true, skipLibCheck: true, strict: false, allowJs: false, jsx: ts.JsxEmit.Preserve, types: [],
  baseUrl: root, paths,
});
const checker = program.getTypeChecker();
const ours = new Set(files.map((f) => path.resolve(f)));
const out = [];

function where(node) {
  const sf = node.getSourceFile();
  return [path.relative(root, sf.fileName), sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1];
}

function declNode(d) {
  if (ts.isConstructorDeclaration(d)) return d.parent; // `new T()`: the class
  if ((ts.isArrowFunction(d) || ts.isFunctionExpression(d)) && ts.isVariableDeclaration(d.parent)) return d.parent;
  if (ts.isVariableDeclaration(d)) return d;
  return d;
}

function calleeName(e) {
  while (ts.isParenthesizedExpression(e) || ts.isNonNullExpression(e)) e = e.expression;
  if (ts.isIdentifier(e)) return e.text;
  if (ts.isPropertyAccessExpression(e)) return e.name.text;
  return null;
}

for (const sf of program.getSourceFiles()) {
  if (!ours.has(path.resolve(sf.fileName))) continue;
  const rel = path.relative(root, sf.fileName);
  (function visit(n) {
    if (ts.isCallExpression(n) || ts.isNewExpression(n)) {
      const callee = n.expression;
      const name = calleeName(callee);
      if (name && callee.kind !== ts.SyntaxKind.SuperKeyword && callee.kind !== ts.SyntaxKind.ImportKeyword) {
        const line = sf.getLineAndCharacterOfPosition(callee.getStart(sf)).line + 1;
        let rec = { file: rel, line, name, kind: "unknown" };
        const sig = checker.getResolvedSignature(n);
        const d = sig && sig.declaration;
        if (d && !ts.isJSDocSignature(d)) {
          const dn = declNode(d);
          const dsf = dn.getSourceFile();
          const named = ts.isFunctionDeclaration(dn) || ts.isMethodDeclaration(dn) || ts.isMethodSignature(dn) ||
            ts.isClassDeclaration(dn) || ts.isVariableDeclaration(dn) || ts.isGetAccessor(dn);
          if (!named) rec.kind = "unknown"; // a call through a function-typed value: no declaration to name
          else if (ours.has(path.resolve(dsf.fileName))) {
            const local = ts.isClassExpression(dn) || ts.isObjectLiteralExpression(dn.parent) || ts.isFunctionExpression(dn) || ts.isArrowFunction(dn);
            rec = { ...rec, kind: local ? "unknown" : "repo", decl: where(dn) };
          } else rec.kind = "ext";
        } else if (!d) {
          const t = checker.getTypeAtLocation(callee);
          if (t && !(t.flags & ts.TypeFlags.Any) && t.getCallSignatures().length + t.getConstructSignatures().length === 0) rec.kind = "unknown";
        }
        out.push(JSON.stringify(rec));
      }
    }
    ts.forEachChild(n, visit);
  })(sf);
}
process.stdout.write(out.join("\n") + "\n");
