# fhirmesh image: one image, two entry points (proxy and controller). Runs the compiled dist/
# (npm run build): type stripping at run time costs each sidecar about 20 MiB more (bench/memory).
# Not built in CI here (no container engine on the build machines); kept in step by hand.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --ignore-scripts

FROM node:24-bookworm-slim
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/crds ./crds
COPY --from=build /src/api/fhirmesh ./api/fhirmesh
COPY --from=build /src/package.json ./package.json
USER node
EXPOSE 8080 9901 15010 9902
ENTRYPOINT ["node", "dist/proxy/src/main.js"]
