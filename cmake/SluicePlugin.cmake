# sluice_add_plugin(<target> KIND source|processor|sink NAME <plugin name> SOURCES ...)
# Builds a loadable plugin `<kind>_<name>.so` against the SDK. Used in-tree and, after
# `make install`, by out-of-tree plugins through find_package(Sluice).
function(sluice_add_plugin target)
  cmake_parse_arguments(P "" "KIND;NAME" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT P_KIND OR NOT P_NAME)
    message(FATAL_ERROR "sluice_add_plugin(${target}): KIND and NAME are required")
  endif()
  add_library(${target} MODULE ${P_SOURCES})
  if(TARGET sluice_sdk)
    target_link_libraries(${target} PRIVATE sluice_sdk ${P_LIBRARIES})
  else()
    target_link_libraries(${target} PRIVATE Sluice::sdk ${P_LIBRARIES})
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX "" OUTPUT_NAME "${P_KIND}_${P_NAME}"
    CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  if(DEFINED SLUICE_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${SLUICE_PLUGIN_OUTPUT_DIR})
  endif()
  # In-tree, tests depend on every plugin through this list.
  set_property(GLOBAL APPEND PROPERTY SLUICE_PLUGIN_TARGETS ${target})
  if(DEFINED SLUICE_INSTALL_PLUGIN_DIR)
    install(TARGETS ${target} LIBRARY DESTINATION ${SLUICE_INSTALL_PLUGIN_DIR})
  endif()
endfunction()
