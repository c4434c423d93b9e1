// A ci.yaml with N branches (one git source each) for timing `stagepost check`:
//   node bench/big-config.mjs 200000 > /tmp/ci-200000.yaml
const n = Number(process.argv[2]);
let s = 'version: 1\nsteps:\n  - name: build\n    run: make\nbranches:\n';
for (let i = 0; i < n; i++) {
  s += `  b${i}:\n    dir: ./sites/b${i}\n    sources:\n      - { name: app, vcs: git, url: "https://git.example.com/app${i % 50}.git", ref: r${i} }\n    customers: [osf]\n`;
}
process.stdout.write(s);
