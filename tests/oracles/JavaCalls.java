// JavaCalls: javac's own attribution of every method call and `new` in a source tree, as JSON lines.
//
// Usage: java JavaCalls.java ROOT   (all .java files under ROOT, as one compilation; classes it
// cannot find stay unattributed and their calls are reported "unknown")
//
// Each line: {"file", "line" (where the call expression starts), "name" (the method, or the class
// of a `new`), "kind": "repo" | "ext" | "unknown", "target" (repo: pkg.Outer.Inner.method, or the
// class for `new`)}. "repo": declared in a source file of ROOT.
import com.sun.source.tree.*;
import com.sun.source.util.*;
import java.io.*;
import java.nio.file.*;
import java.util.*;
import java.util.stream.*;
import javax.lang.model.element.*;
import javax.tools.*;

public class JavaCalls {
    public static void main(String[] args) throws Exception {
        Path root = Paths.get(args[0]).toAbsolutePath().normalize();
        List<File> files;
        try (Stream<Path> s = Files.walk(root)) {
            files = s.filter(p -> p.toString().endsWith(".java")).map(Path::toFile).collect(Collectors.toList());
        }
        JavaCompiler jc = ToolProvider.getSystemJavaCompiler();
        StandardJavaFileManager fm = jc.getStandardFileManager(null, null, null);
        DiagnosticListener<JavaFileObject> quiet = d -> {};
        JavacTask task = (JavacTask) jc.getTask(null, fm, quiet, List.of("-proc:none", "-Xmaxerrs", "0"), null,
                fm.getJavaFileObjectsFromFiles(files));
        List<CompilationUnitTree> units = new ArrayList<>();
        task.parse().forEach(units::add);
        task.analyze();
        Trees trees = Trees.instance(task);
        Set<String> ours = new HashSet<>();
        for (CompilationUnitTree u : units) {
            String pkg = u.getPackageName() == null ? "" : u.getPackageName().toString();
            for (Tree t : u.getTypeDecls())
                if (t instanceof ClassTree c) ours.add(pkg.isEmpty() ? c.getSimpleName().toString() : pkg + "." + c.getSimpleName());
        }
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), false, "UTF-8");
        for (CompilationUnitTree u : units) {
            String rel = root.relativize(Paths.get(u.getSourceFile().toUri())).toString();
            SourcePositions pos = trees.getSourcePositions();
            LineMap lines = u.getLineMap();
            new TreePathScanner<Void, Void>() {
                void emit(Tree t, String name, String kind, String target) {
                    long p = pos.getStartPosition(u, t);
                    if (p < 0) return;
                    out.println("{\"file\": " + q(rel) + ", \"line\": " + lines.getLineNumber(p) + ", \"name\": " + q(name)
                            + ", \"kind\": " + q(kind) + (target == null ? "" : ", \"target\": " + q(target)) + "}");
                }
                String judge(Element e) {
                    if (e == null || e.asType() == null || e.asType().getKind() == javax.lang.model.type.TypeKind.ERROR) return null;
                    Element top = e;
                    while (top.getEnclosingElement() != null && top.getEnclosingElement().getKind() != ElementKind.PACKAGE)
                        top = top.getEnclosingElement();
                    if (!(top instanceof TypeElement tt)) return null;
                    return ours.contains(tt.getQualifiedName().toString()) ? "repo" : "ext";
                }
                @Override public Void visitMethodInvocation(MethodInvocationTree t, Void v) {
                    ExpressionTree sel = t.getMethodSelect();
                    String name = sel instanceof MemberSelectTree m ? m.getIdentifier().toString()
                            : sel instanceof IdentifierTree i ? i.getName().toString() : null;
                    if (name != null && !name.equals("this") && !name.equals("super")) {
                        Element e = trees.getElement(new TreePath(getCurrentPath(), sel));
                        String kind = e instanceof ExecutableElement ? judge(e) : null;
                        if (kind == null) emit(t, name, "unknown", null);
                        else if (kind.equals("ext")) emit(t, name, "ext", null);
                        else {
                            TypeElement owner = (TypeElement) e.getEnclosingElement();
                            boolean local = owner.getNestingKind() == NestingKind.ANONYMOUS || owner.getNestingKind() == NestingKind.LOCAL;
                            emit(t, name, local ? "unknown" : "repo", owner.getQualifiedName() + "." + name);
                        }
                    }
                    return super.visitMethodInvocation(t, v);
                }
                @Override public Void visitNewClass(NewClassTree t, Void v) {
                    if (t.getClassBody() == null) {
                        Element e = trees.getElement(new TreePath(getCurrentPath(), t.getIdentifier()));
                        String name = e == null ? null : e.getSimpleName().toString();
                        String kind = e instanceof TypeElement ? judge(e) : null;
                        if (e instanceof TypeElement te && te.getNestingKind() == NestingKind.LOCAL) kind = "unknown";
                        if (name != null && kind != null)
                            emit(t, name, kind, kind.equals("repo") ? ((TypeElement) e).getQualifiedName().toString() : null);
                    }
                    return super.visitNewClass(t, v);
                }
            }.scan(u, null);
        }
        out.flush();
    }

    static String q(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\');
            b.append(c);
        }
        return b.append('"').toString();
    }
}
