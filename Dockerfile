# fhirmesh image for people who build with a container engine: the same three layers as
# `npm run image` (image/build-image.sh, no engine needed), because both run image/assemble-layers.sh.
# No distribution, no shell, no npm in the result: Node 24 and the libraries it links, dist/, the
# production node_modules, and the launchers fhirmesh-proxy / fhirmesh-controller; user 65532.
FROM node:24-bookworm-slim AS build
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends binutils && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# With install scripts: the `node` package's own installs the Node binary the image ships.
RUN npm ci --no-audit --no-fund
COPY . .
RUN bash image/assemble-layers.sh /layers

FROM scratch
COPY --from=build /layers/runtime/ /
COPY --from=build /layers/modules/ /
COPY --from=build /layers/app/ /
USER 65532:65532
WORKDIR /app
ENV PATH=/usr/local/bin:/usr/bin:/bin NODE_ENV=production
# proxy listener, proxy admin, controller admin, controller gRPC, injection webhook
EXPOSE 8080 9901 9902 15010 9443
CMD ["fhirmesh-proxy"]
