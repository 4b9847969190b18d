import { defineConfig } from "vitest/config";

// One entry per page; Django templates include them through the manifest
// (labeling/templatetags/vite.py), and static files are served under /static/.
export default defineConfig({
  base: "/static/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    manifest: true,
    target: "es2022",
    rollupOptions: {
      input: {
        base: "src/pages/base.ts",
        annotate: "src/pages/annotate.ts",
        review: "src/pages/review.ts",
        images: "src/pages/images.ts",
        imageEdit: "src/pages/imageEdit.ts",
        imagePrivacy: "src/pages/imagePrivacy.ts",
        models: "src/pages/models.ts",
        settings: "src/pages/settings.ts",
        upload: "src/pages/upload.ts",
        export: "src/pages/export.ts",
        reports: "src/pages/reports.ts",
        taxonomy: "src/pages/taxonomy.ts",
        clusters: "src/pages/clusters.ts",
        annotateGrid: "src/pages/annotateGrid.ts",
        reportCharts: "src/reports/main.ts",
      },
    },
  },
  test: {
    include: ["tests/**/*.test.ts"],
    environment: "node",
  },
});
