/* Loaded by every dashboard page before rq-dashboard's own scripts (see templates/rq_dashboard/base.html).
 *
 * 1. Actions (every POST) carry the page's CSRF token, which flask-wtf requires: without it each
 *    button was refused with 400 and nothing on the page said so.
 * 2. A failed request, or an action the server answered with a status other than "OK", is shown
 *    in #rq-guard-alert instead of being ignored. Text only: nothing from the server becomes markup.
 * 3. _.template returns the page's templates precompiled in rq-templates.js: underscore's own
 *    compiles them with new Function, which the dashboard's Content-Security-Policy forbids.
 */
(function ($) {
    'use strict';

    var precompiled = window.RQ_TEMPLATES || {};
    _.template = function (text) {
        var render = precompiled[text];
        if (!render) {
            throw new Error('rq-guard: a template that was not precompiled (python -m app.dashboard.precompile)');
        }
        return function (data) {
            return render.call(this, data, _);
        };
    };

    var token = $('meta[name=csrf-token]').attr('content') || '';
    var SAFE_METHODS = /^(GET|HEAD|OPTIONS)$/i;
    var ACTIONS = [
        [/\/job\/[^/]+\/requeue$/, 'Requeue'],
        [/\/job\/[^/]+\/delete$/, 'Delete'],
        [/\/requeue\/[^/]+$/, 'Requeue all'],
        [/\/queue\/[^/]+\/[^/]+\/empty$/, 'Empty queue'],
        [/\/queue\/[^/]+\/compact$/, 'Compact']
    ];

    $.ajaxPrefilter(function (options, originalOptions, jqXHR) {
        if (!options.crossDomain && !SAFE_METHODS.test(options.type)) {
            jqXHR.setRequestHeader('X-CSRFToken', token);
        }
    });

    function actionName(settings) {
        var path = settings.url.split('?')[0];
        for (var i = 0; i < ACTIONS.length; i++) {
            if (ACTIONS[i][0].test(path)) {
                return ACTIONS[i][1];
            }
        }
        return SAFE_METHODS.test(settings.type) ? 'Loading ' + path : settings.type + ' ' + path;
    }

    // The reason the server gave: "error" or "status" of a JSON answer, else the message of the app's
    // HTML error page, read by an inert DOMParser document (its scripts never run, its images never load).
    function reason(jqXHR) {
        var json = jqXHR.responseJSON;
        if (json && (json.error || json.status)) {
            return String(json.error || json.status);
        }
        var text = jqXHR.responseText || '';
        if (/^\s*</.test(text)) {
            var doc = new DOMParser().parseFromString(text, 'text/html');
            var selectors = ['.error', 'p', 'h1'];
            for (var i = 0; i < selectors.length; i++) {
                var found = doc.querySelector(selectors[i]);
                if (found && found.textContent.trim()) {
                    return found.textContent.trim();
                }
            }
        }
        return jqXHR.statusText || 'no answer';
    }

    // What the banner shows: "action" failures stay until an action succeeds; "load" failures (a poll)
    // go away when a later poll succeeds.
    var shown = null;

    function show(kind, message) {
        if (kind === 'load' && shown === 'action') {
            return;
        }
        shown = kind;
        $('#rq-guard-alert').text(message).prop('hidden', false);
    }

    function clear(kind) {
        if (shown === kind) {
            shown = null;
            $('#rq-guard-alert').prop('hidden', true).text('');
        }
    }

    function kindOf(settings) {
        return SAFE_METHODS.test(settings.type) ? 'load' : 'action';
    }

    $(document).ajaxError(function (event, jqXHR, settings) {
        // rq-dashboard 0.9.0 asks its index page for a JSON list of instances on every page, gets HTML,
        // and ignores the failure; a load answered 200 is that, not an outage.
        if (kindOf(settings) === 'load' && jqXHR.status === 200) {
            return;
        }
        var status = jqXHR.status ? jqXHR.status + ' ' : '';
        show(kindOf(settings), actionName(settings) + ' failed: ' + status + reason(jqXHR));
    });

    $(document).ajaxSuccess(function (event, jqXHR, settings, data) {
        var kind = kindOf(settings);
        if (kind === 'action' && !(data && data.status === 'OK')) {
            show(kind, actionName(settings) + ' failed: ' + ((data && data.status) || 'unexpected answer'));
        } else {
            clear(kind);
        }
    });
})(jQuery);
