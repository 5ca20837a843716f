#!/usr/bin/env bash
# Builds the workload images for linux/amd64, linux/arm64 and linux/arm/v7 (32-bit Raspberry Pi
# OS) with docker buildx and, with --push, pushes them to REGISTRY, e.g. a Raspberry Pi cluster's
# registry or your account on a public one:
#
#   scripts/build-images.sh REGISTRY [--push]
#
# produces REGISTRY/kube-alive/workloads:v1-DIGEST and :v2-DIGEST (one manifest list, an image
# index, each: every node pulls the image of its own platform), where DIGEST names the workloads' sources (python3 suite/images.py digest: a sha256 over
# workloads/ and its Dockerfile, as the suite computes it), also tagged :v1 and :v2 for the demo,
# and prints the value to pass to the suite: pytest --cluster=existing --image-registry REGISTRY.
# The suite pulls the DIGEST tags only: after editing a workload, build and push again.
#
# Without --push the images stay in buildx's build cache (a multi-platform image cannot be loaded
# into the local docker image store); use it to check that every platform builds.
# Environment: PLATFORMS (default linux/amd64,linux/arm64,linux/arm/v7); CA_BUNDLE, a PEM file that pip inside
# the build must trust (default: none; passed as a build secret, never stored in the image);
# BASE_IMAGE, another base than the Dockerfile's official slim Python image (any image with python3
# and its venv module, e.g. one made offline with debootstrap); BUILD_NETWORK, the network of the
# build's RUN steps (e.g. host, where the engine has no default bridge). PLATFORMS= (empty) builds
# for the builder's own platform without --platform: older engines (Docker 20.10's BuildKit)
# then take a BASE_IMAGE from the local image store instead of asking a registry for it.
set -euo pipefail

usage() {
  echo "usage: $0 REGISTRY [--push]   (e.g. $0 my-registry:5000 --push)" >&2
  exit 2
}

registry=""
push=false
for arg in "$@"; do
  case "$arg" in
    --push) push=true ;;
    -h|--help) usage ;;
    -*) echo "$0: unknown option $arg" >&2; usage ;;
    *)
      [ -z "$registry" ] || { echo "$0: only one REGISTRY, got '$registry' and '$arg'" >&2; usage; }
      registry="$arg"
      ;;
  esac
done
[ -n "$registry" ] || usage
registry="${registry%/}"
platforms="${PLATFORMS-linux/amd64,linux/arm64,linux/arm/v7}"

if ! command -v docker >/dev/null 2>&1; then
  echo "$0: docker is not on PATH; install Docker (with the buildx plugin) first" >&2
  exit 1
fi
if ! docker buildx version >/dev/null 2>&1; then
  echo "$0: docker buildx is missing; install the buildx plugin (package docker-buildx-plugin" \
       "or docker-buildx)" >&2
  exit 1
fi
if ! docker info >/dev/null 2>&1; then
  echo "$0: the docker engine does not answer (is it running, may this user use it?)" >&2
  exit 1
fi
# Each platform needs a builder that can run its programs (natively or through qemu) and store a
# multi-platform result: a docker-container builder, or Docker Desktop's containerd image store.
platform_args=()
if [ -n "$platforms" ]; then
  builder_platforms="$(docker buildx inspect --bootstrap 2>/dev/null | sed -n 's/^Platforms: *//p')"
  IFS=, read -r -a wanted <<<"$platforms"
  for platform in "${wanted[@]}"; do
    case ", $builder_platforms," in
      *", $platform,"* | *", $platform/"*) ;;
      *)
        echo "$0: the current buildx builder cannot build $platform (it has: ${builder_platforms:-none})." >&2
        echo "  Register qemu (Debian/Ubuntu: apt-get install qemu-user-static binfmt-support), then" >&2
        echo "  docker buildx create --name kube-alive --driver docker-container --use" >&2
        exit 1
        ;;
    esac
  done
  platform_args=(--platform "$platforms")
fi

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
# The content tags come from the one place that names the images (standard library only; -I so
# neither the environment nor suite/'s own modules shadow the standard library's).
python="${PYTHON:-python3}"
command -v "$python" >/dev/null 2>&1 || {
  echo "$0: $python is not on PATH; it computes the image tags (set PYTHON=... to another)" >&2
  exit 1
}
secret=()
if [ -n "${CA_BUNDLE:-}" ]; then
  [ -s "$CA_BUNDLE" ] || { echo "$0: CA_BUNDLE=$CA_BUNDLE is not a readable file" >&2; exit 1; }
  secret=(--secret "id=cabundle,src=$CA_BUNDLE")
fi
base=()
if [ -n "${BASE_IMAGE:-}" ]; then
  base=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
fi
network=()
if [ -n "${BUILD_NETWORK:-}" ]; then
  network=(--network "$BUILD_NETWORK")
fi
output=()
if [ "$push" = true ]; then
  output=(--push)
fi

pushed=()
for version in v1 v2; do
  tag="$("$python" -I "$repo_root/suite/images.py" tag "$version")"
  ref="$registry/kube-alive/workloads:$tag"
  echo "== $ref, also :$version (${platforms:-the native platform})"
  docker buildx build ${platform_args[@]+"${platform_args[@]}"} ${network[@]+"${network[@]}"} \
    -f "$repo_root/workloads/Dockerfile" --build-arg "VERSION=$version" ${base[@]+"${base[@]}"} \
    ${secret[@]+"${secret[@]}"} ${output[@]+"${output[@]}"} \
    -t "$ref" -t "$registry/kube-alive/workloads:$version" "$repo_root"
  pushed+=(":$tag")
done

if [ "$push" = true ]; then
  echo "Pushed $registry/kube-alive/workloads${pushed[0]} and ${pushed[1]} (and :v1, :v2) for ${platforms:-the native platform}. Run the suite with:"
else
  echo "Built (not pushed) for ${platforms:-the native platform}. After pushing (--push), run the suite with:"
fi
echo "  pytest --cluster=existing --image-registry $registry"
