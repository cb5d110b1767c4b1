# Run as `cmake -DOUT=file.cc -DDIR=controlplane/admin -P EmbedAdminAssets.cmake`: writes a C++ file
# that holds every *.html, *.js and *.css of the admin dashboard as a byte array, so the installed
# inkwired serves /admin/ with no source tree (like EmbedMigrations.cmake does for migrations/).
# Byte arrays rather than raw strings: an asset may contain any byte, and none needs escaping.
file(GLOB files RELATIVE ${DIR} ${DIR}/*.html ${DIR}/*.js ${DIR}/*.css)
list(SORT files)
set(arrays "")
set(entries "")
set(index 0)
foreach(f ${files})
  file(READ ${DIR}/${f} hex HEX)
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  # "4142…" -> "0x41,0x42,…" (one line per asset: CMake's regex has no {n} to wrap it by).
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND arrays "// ${f}\nconst unsigned char asset_${index}[] = {\n    ${bytes}0};\n\n")
  string(APPEND entries "      {\"${f}\", std::string_view(reinterpret_cast<const char*>(asset_${index}), ${size})},\n")
  math(EXPR index "${index} + 1")
endforeach()
set(body "// Generated from controlplane/admin/ by cmake/EmbedAdminAssets.cmake. Do not edit.\n#include \"controlplane/api/admin_assets.h\"\n\nnamespace inkwire::controlplane {\nnamespace {\n\n${arrays}}  // namespace\n\nconst std::vector<AdminAsset>& embedded_admin_assets() {\n  static const std::vector<AdminAsset> assets = {\n${entries}  };\n  return assets;\n}\n\n}  // namespace inkwire::controlplane\n")
file(WRITE ${OUT}.tmp "${body}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
