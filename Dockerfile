# Herald: one static binary that runs every role (serve, ingest, edge,
# streams, doctor, ...). Build: docker build -t herald .
# Used by docker-compose.yml; see README.md, "Run it distributed".

FROM golang:1.26-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/herald ./cmd/herald

# distroless static: no shell, no package manager; runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/herald /usr/local/bin/herald
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/herald"]
CMD ["--help"]
